"""Where a store's files live: a local directory or an fsspec URL (s3://, gs://, az://, memory://).

Both give the same small set of operations on keys relative to the store root:
whole-file writes that readers see all-or-nothing (local: temp file + fsync + rename;
object storage: a single PUT), unique names so several writers never collide, listing,
reading and deleting. Credentials come from each backend's usual environment/config
(AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*); kling_lab never stores them.
"""

from __future__ import annotations

import errno
import io
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from kling_lab.errors import InvalidInput


def is_url(location: str | os.PathLike[str]) -> bool:
    """True for ``scheme://…`` locations other than ``file://``."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def unique_name(prefix: str = "part", suffix: str = ".parquet") -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:10]}{suffix}"


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


class Files(Protocol):
    """The file operations a store needs, on keys like ``runs/part-….parquet``."""

    location: str

    def list(self, prefix: str, suffix: str = ".parquet") -> list[str]: ...
    def read_table(self, key: str) -> pa.Table: ...
    def write_table(self, prefix: str, table: pa.Table, name_prefix: str = "part") -> str: ...
    def put_file(self, local: Path, key: str) -> None: ...
    def get_file(self, key: str, local: Path) -> None: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def uri(self, key: str) -> str: ...


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a new or renamed file) durable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalFiles:
    """A directory on this machine: temp file + fsync + atomic rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def tmp_path(self, suffix: str = "") -> Path:
        """A fresh path under ``tmp/`` (same filesystem as the files: renames are atomic)."""
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp / f".{uuid.uuid4().hex}{suffix}"

    def list(self, prefix: str, suffix: str = ".parquet") -> list[str]:
        directory = self.root / prefix
        if not directory.is_dir():
            return []
        return sorted(f"{prefix}/{p.name}" for p in directory.iterdir() if p.name.endswith(suffix))

    def find(self, prefix: str) -> set[str]:
        """Every key under ``prefix`` (recursive)."""
        base = self.root / prefix
        return {p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file()} if base.is_dir() else set()

    def read_table(self, key: str) -> pa.Table:
        with pq.ParquetFile(self.root / key) as parquet:  # lighter than pq.read_table's dataset machinery
            return parquet.read()

    def write_table(self, prefix: str, table: pa.Table, name_prefix: str = "part") -> str:
        key = f"{prefix}/{unique_name(name_prefix)}"
        tmp = self.tmp_path(".parquet")
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        self._publish(tmp, self.root / key)
        return key

    def _publish(self, tmp: Path, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)

    def put_file(self, local: Path, key: str) -> None:
        """Move ``local`` (a file in this store's tmp/) to ``key``."""
        self._publish(local, self.root / key)

    def get_file(self, key: str, local: Path) -> None:
        if Path(local) != self.root / key:
            raise ValueError("a local store's files are used in place")

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def uri(self, key: str) -> str:
        return str((self.root / key).resolve())


class RemoteFiles:
    """Object storage through fsspec: every write is one PUT under a unique name."""

    def __init__(self, url: str) -> None:
        import fsspec

        parsed = urlparse(url)
        check_url(url)
        try:
            # No listing cache: other people and machines write to the same prefix.
            self.fs, base = fsspec.core.url_to_fs(url, use_listings_cache=False, skip_instance_cache=True)
        except (ImportError, ValueError) as exc:
            raise InvalidInput(
                f"cannot open store {url}: {exc} (install the extra: pip install "
                f"'kling-lab[{_extra_for(parsed.scheme)}]')"
            ) from None
        self.base = base.rstrip("/")
        self.location = url.rstrip("/")
        self.protocol = parsed.scheme

    def _path(self, key: str) -> str:
        return f"{self.base}/{key}"

    def list(self, prefix: str, suffix: str = ".parquet") -> list[str]:
        try:
            paths = self.fs.ls(self._path(prefix), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        names = [str(p).rstrip("/").rsplit("/", 1)[-1] for p in paths]
        return sorted(f"{prefix}/{n}" for n in names if n.endswith(suffix))

    def read_table(self, key: str) -> pa.Table:
        with self.fs.open(self._path(key), "rb") as fh:
            return pq.read_table(pa.BufferReader(fh.read()))

    def write_table(self, prefix: str, table: pa.Table, name_prefix: str = "part") -> str:
        key = f"{prefix}/{unique_name(name_prefix)}"
        self.fs.pipe_file(self._path(key), _parquet_bytes(table))
        return key

    def put_file(self, local: Path, key: str) -> None:
        self.fs.put_file(str(local), self._path(key))

    def get_file(self, key: str, local: Path) -> None:
        self.fs.get_file(self._path(key), str(local))

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def find(self, prefix: str) -> set[str]:
        """Every key under ``prefix`` (recursive)."""
        try:
            paths = self.fs.find(self._path(prefix))
        except FileNotFoundError:
            return set()
        cut = len(self.base) + 1
        return {str(p)[cut:] for p in paths}

    def delete(self, key: str) -> None:
        try:
            self.fs.rm_file(self._path(key))
        except FileNotFoundError:
            pass

    def uri(self, key: str) -> str:
        return f"{self.location}/{key}"


def _extra_for(scheme: str) -> str:
    return {"s3": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure"}.get(scheme, scheme)


def check_local_store(path: Path) -> None:
    """Refuse, with one line, a local store path that can never be a store directory: a file, a
    dangling symlink, a symlink loop, or a path under a file. A missing directory is fine (it is
    created on the first write)."""
    for candidate in (path, *path.parents):
        if not os.path.lexists(candidate):
            continue
        where = "store" if candidate == path else f"store {path}:"
        try:
            target_is_dir = candidate.is_dir()  # follows symlinks
            os.stat(candidate)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InvalidInput(f"{where} {candidate} is a symlink loop, not a store directory") from None
            if exc.errno == errno.ENOENT:
                target = os.readlink(candidate) if candidate.is_symlink() else "?"
                raise InvalidInput(
                    f"{where} {candidate} is a dangling symlink (to {target}), not a store directory"
                ) from None
            raise InvalidInput(f"{where} cannot use {candidate}: {exc.strerror}") from None
        if not target_is_dir:
            raise InvalidInput(f"{where} {candidate} is a file, not a store directory")
        return


def check_writable(path: Path) -> None:
    """Refuse a local store this process cannot write: the directory (or, before it exists, its
    nearest existing parent) must allow creating files. ``os.access`` also answers for a read-only
    filesystem and an immutable directory, where root is refused too."""
    for candidate in (path, *path.parents):
        if os.path.isdir(candidate):
            if not os.access(candidate, os.W_OK | os.X_OK):
                what = "" if candidate == path else f" (its parent {candidate} is not)"
                raise InvalidInput(
                    f"store {path} is not writable{what}: read-only filesystem or no permission; nothing was written"
                )
            return


def _safe_url(parsed: Any) -> str:
    """A URL without its user info, query or fragment (what may be shown in a message)."""
    host = parsed.hostname or ""
    return f"{parsed.scheme}://{host}{parsed.path}"


def check_url(url: str) -> None:
    """Refuse a store URL that carries credentials or options (user info, ``?query``, ``#fragment``),
    without repeating them: they belong in the environment, never in a location that is logged."""
    parsed = urlparse(url)
    if parsed.username or parsed.password or parsed.query or parsed.fragment or "@" in parsed.netloc:
        raise InvalidInput(
            f"store URL {_safe_url(parsed)}: credentials and options (user:password@, ?query, #fragment) do "
            "not belong in a store URL; put them in the environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, "
            "AZURE_STORAGE_*)"
        )


def open_files(location: str | os.PathLike[str]) -> LocalFiles | RemoteFiles:
    """The file layer for a store location (refused with one line when it cannot be a store)."""
    text = str(location)
    if not text.strip():
        raise InvalidInput(
            "store location is empty: pass a directory or URL to --store (or leave it out for ./kling_runs)"
        )
    if text.startswith("file://"):
        check_url(text)
        path = Path(urlparse(text).path)
    elif is_url(text):
        check_url(text)
        return RemoteFiles(text)
    else:
        path = Path(text)
    check_local_store(path)
    return LocalFiles(path)
