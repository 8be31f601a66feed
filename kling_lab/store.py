"""RunStore: the append-only parquet run log and the downloaded videos under one directory.

Layout of a store directory::

    runs/part-<utc>-<uuid>.parquet   one file per write batch, written to a temp name and renamed
    videos/<sha[:2]>/<sha>.mp4       downloaded videos, content-addressed (same clip stored once)
    tmp/                             partial files (downloads, parquet being written)

Readers see whole files only (rename is atomic) and rows are de-duplicated by ``run_id``,
so a compaction running beside a reader never shows a partial or doubled log.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from .schema import RUN_SCHEMA, pandas_dtype_for

DEFAULT_STORE = "kling_runs"
STORE_ENV = "KLING_LAB_STORE"


def default_store_path() -> Path:
    """``$KLING_LAB_STORE`` if set, else ``./kling_runs``."""
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


class RunStore:
    """A store directory: the parquet run log plus the videos it points to."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_store_path()

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    @classmethod
    def coerce(cls, store: "RunStore | str | os.PathLike[str] | None") -> "RunStore":
        return store if isinstance(store, RunStore) else cls(store)

    # -- directories -----------------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def videos_dir(self) -> Path:
        return self.root / "videos"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def _ensure(self, path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        return path

    def new_tmp_path(self, suffix: str = "") -> Path:
        """A fresh path inside the store (same filesystem, so a later rename is atomic)."""
        return self._ensure(self.tmp_dir) / f".{uuid.uuid4().hex}{suffix}"

    # -- videos ----------------------------------------------------------------------------
    def video_relpath(self, sha256: str, suffix: str = ".mp4") -> str:
        return f"videos/{sha256[:2]}/{sha256}{suffix}"

    def ingest_video(self, tmp_file: Path, sha256: str, suffix: str = ".mp4") -> str:
        """Move a downloaded file to its content-addressed place; return its store-relative path."""
        rel = self.video_relpath(sha256, suffix)
        dest = self.root / rel
        self._ensure(dest.parent)
        if dest.exists() and dest.stat().st_size == tmp_file.stat().st_size:
            tmp_file.unlink(missing_ok=True)
        else:
            os.replace(tmp_file, dest)
            _fsync_dir(dest.parent)
        return rel

    def resolve(self, relpath: str | None) -> Path | None:
        return None if relpath is None else self.root / relpath

    def video_file(self, video_path: str | os.PathLike[str]) -> Path:
        """A local, existing file for a DataFrame's ``video_path`` value (absolute or store-relative).

        Views and metrics call this instead of opening ``video_path`` directly, so that
        stores whose videos live elsewhere can fetch them into a local cache first."""
        path = Path(video_path)
        if not path.is_absolute():
            path = self.root / path
        if not path.is_file():
            raise FileNotFoundError(f"video not in the store: {path}")
        return path

    # -- other datasets (votes, …): same append-only, atomic parquet layout ---------------
    def append_table(self, dataset: str, table: pa.Table) -> Path:
        """Write ``table`` as a new part file of ``<store>/<dataset>/`` (atomic)."""
        return self._write_atomic(table, self._ensure(self.root / dataset))

    def read_dataset(self, dataset: str, schema: pa.Schema) -> pa.Table:
        """Every part file of ``<store>/<dataset>/`` unified to ``schema``."""
        directory = self.root / dataset
        tables = []
        for path in sorted(directory.glob("*.parquet")) if directory.is_dir() else []:
            try:
                tables.append(_conform(pq.read_table(path), schema))
            except FileNotFoundError:
                continue
        return pa.concat_tables(tables) if tables else schema.empty_table()

    # -- the run log -----------------------------------------------------------------------
    def append(self, rows: Sequence[Mapping[str, Any]]) -> Path | None:
        """Write ``rows`` as one new parquet file (atomically); return its path."""
        if not rows:
            return None
        unknown = set().union(*(r.keys() for r in rows)) - set(RUN_SCHEMA.names)
        if unknown:
            raise KeyError(f"unknown run log columns: {sorted(unknown)}")
        table = pa.Table.from_pylist([dict(r) for r in rows], schema=RUN_SCHEMA)
        return self._write_atomic(table, self._ensure(self.runs_dir))

    def _write_atomic(self, table: pa.Table, directory: Path, prefix: str = "part") -> Path:
        final = directory / f"{prefix}-{_utc_stamp()}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = self.new_tmp_path(".parquet")
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(directory)
        return final

    def part_files(self) -> list[Path]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(self.runs_dir.glob("*.parquet"))

    def read_table(self) -> pa.Table:
        """Every row of every part file, unified to the current schema."""
        tables = []
        for path in self.part_files():
            try:
                table = pq.read_table(path)
            except FileNotFoundError:  # removed by a concurrent compaction; its rows live on elsewhere
                continue
            tables.append(_conform(table))
        if not tables:
            return RUN_SCHEMA.empty_table()
        return pa.concat_tables(tables)

    def load(self, *, sweep_id: str | None = None, absolute_paths: bool = True):
        """The run log as one pandas DataFrame (typed columns, UTC timestamps), oldest first."""
        table = self.read_table()
        df = table.to_pandas(types_mapper=pandas_dtype_for)
        if len(df):
            df = df.drop_duplicates(subset="run_id", keep="first")
            df = df.sort_values(["logged_at", "sweep_index"], kind="stable").reset_index(drop=True)
        if sweep_id is not None:
            df = df[df["sweep_id"] == sweep_id].reset_index(drop=True)
        if absolute_paths and len(df):
            root = str(self.root.resolve())
            df["video_path"] = (root + os.sep + df["video_path"]).astype(df["video_path"].dtype)
        return df

    def compact(self) -> int:
        """Merge all part files into one; return how many files were merged.

        The merged file is written before the old ones are removed, so a reader at any
        moment sees every row (rows present twice for an instant are dropped by run_id).
        """
        parts = self.part_files()
        if len(parts) < 2:
            return 0
        table = pa.concat_tables([_conform(pq.read_table(p)) for p in parts])
        self._write_atomic(table, self.runs_dir, prefix="compact")
        for path in parts:
            path.unlink(missing_ok=True)
        _fsync_dir(self.runs_dir)
        return len(parts)

    def iter_rows(self) -> Iterable[dict[str, Any]]:
        return self.read_table().to_pylist()


def _conform(table: pa.Table, schema: pa.Schema = RUN_SCHEMA) -> pa.Table:
    """Add missing columns as nulls and order/cast to ``schema``."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            col = table.column(field.name)
            columns.append(col if col.type == field.type else col.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def rows_frame(rows: Sequence[Mapping[str, Any]], store: "RunStore | None" = None):
    """Rows (dicts in the schema's columns) as a DataFrame typed exactly like ``load_runs``."""
    table = pa.Table.from_pylist([dict(r) for r in rows], schema=RUN_SCHEMA)
    df = table.to_pandas(types_mapper=pandas_dtype_for)
    if store is not None and len(df):
        root = str(store.root.resolve())
        df["video_path"] = (root + os.sep + df["video_path"]).astype(df["video_path"].dtype)
    return df


def load_runs(store: RunStore | str | os.PathLike[str] | None = None, *, sweep_id: str | None = None):
    """Every run in ``store`` (default ``$KLING_LAB_STORE`` or ``./kling_runs``) as a DataFrame."""
    return RunStore.coerce(store).load(sweep_id=sweep_id)
