"""RunStore: the append-only parquet run log and the downloaded videos, local or on object storage.

Layout (a directory, or a prefix of an ``s3://`` / ``gs://`` / ``az://`` URL)::

    runs/part-<utc>-<uuid>.parquet   one file per write batch (unique names: writers never collide)
    votes/part-….parquet             blind A/B votes (same layout)
    videos/<sha[:2]>/<sha>.mp4       videos, content-addressed (the same clip is stored once)
    journal/                         local store: the live journal; remote store: finished journals
    tmp/                             partial files (local only)

Readers see whole files only (local rename / object PUT are atomic) and rows are de-duplicated
by ``run_id`` (the newest ``revised_at`` wins), so a compaction running beside a reader never
shows a partial or doubled log. A remote store keeps a local cache (``$KLING_LAB_CACHE``) for
its live journal (it must be fsync-able), temp files and fetched videos.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from kling_lab.store.files import LocalFiles, RemoteFiles, check_writable, open_files
from kling_lab.store.schema import RUN_SCHEMA, pandas_dtype_for
from kling_lab.util.hashing import sha256_file

DEFAULT_STORE = "kling_runs"
STORE_ENV = "KLING_LAB_STORE"
CACHE_ENV = "KLING_LAB_CACHE"
STORE_ATTR = "kling_lab_store"  # df.attrs key: the location of the store a runs DataFrame came from
READ_RETRIES = 8
_VIDEO_KEY = re.compile(r"videos/[0-9a-f]{2}/[0-9a-f]{64}\.mp4")


def default_store_path() -> str:
    """``$KLING_LAB_STORE`` if set (a path or a URL), else ``./kling_runs``."""
    return os.environ.get(STORE_ENV) or DEFAULT_STORE


def cache_root() -> Path:
    """Local cache for remote stores (videos, journals, temp files): ``$KLING_LAB_CACHE`` or ~/.cache."""
    base = os.environ.get(CACHE_ENV) or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "kling_lab")
    return Path(base).expanduser()


def _cache_dir_for(location: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", location)[-60:]
    digest = hashlib.sha256(location.encode()).hexdigest()[:10]
    return cache_root() / "stores" / f"{slug}-{digest}"


class RunStore:
    """A store: the parquet run log (and other datasets) plus the videos it points to.

    ``location`` is a directory or an fsspec URL (``s3://bucket/prefix``). ``root`` is always
    a local directory: the store itself, or for a remote store its local cache (journal,
    temp files and fetched videos live there).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        location = str(root) if root is not None else default_store_path()
        self.files: LocalFiles | RemoteFiles = open_files(location)
        self.is_remote = isinstance(self.files, RemoteFiles)
        self.location = self.files.location
        self.root = _cache_dir_for(self.location) if self.is_remote else Path(location)
        # The local side: the store itself, or a remote store's cache (same layout).
        self.local: LocalFiles = self.files if isinstance(self.files, LocalFiles) else LocalFiles(self.root)

    def __repr__(self) -> str:
        return f"RunStore({self.location!r})"

    @classmethod
    def coerce(cls, store: RunStore | str | os.PathLike[str] | None) -> RunStore:
        return store if isinstance(store, RunStore) else cls(store)

    def exists(self) -> bool:
        """Is there a store here yet (a directory, or anything under the URL's prefix)?"""
        if isinstance(self.files, RemoteFiles):
            return bool(self.files.fs.exists(self.files.base))
        return self.root.is_dir()

    def require_writable(self) -> RunStore:
        """Refuse (InvalidInput, one line) a local store this process cannot write, before anything
        is submitted or written. A remote store's permissions show on its first write."""
        check_writable(self.root)
        return self

    # -- local directories -----------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def videos_dir(self) -> Path:
        return self.root / "videos"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def journal_dir(self) -> Path:
        """Always on this machine's disk (it must be fsync-able)."""
        return self.root / "journal"

    def new_tmp_path(self, suffix: str = "") -> Path:
        """A fresh local path (same filesystem as the store or its cache: renames are atomic)."""
        return self.local.tmp_path(suffix)

    def download_path(self, request_id: str, suffix: str = ".mp4") -> Path:
        """Where a request's video is downloaded to (``tmp/dl-<request id>``): a name a resume finds again."""
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", request_id)[:120] or "unknown"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return self.tmp_dir / f"dl-{safe}{suffix}"

    # -- videos ----------------------------------------------------------------------------
    def video_relpath(self, sha256: str, suffix: str = ".mp4") -> str:
        return f"videos/{sha256[:2]}/{sha256}{suffix}"

    def ingest_video(self, tmp_file: Path, sha256: str, suffix: str = ".mp4") -> str:
        """Store a downloaded file under its content address (uploaded once); return its key.

        The file stays available locally at ``self.root / key`` (the store, or its cache)."""
        rel = self.video_relpath(sha256, suffix)
        local = self.root / rel
        if self.is_remote and not self.files.exists(rel):
            self.files.put_file(tmp_file, rel)
        if local.is_file() and local.stat().st_size == tmp_file.stat().st_size:
            tmp_file.unlink(missing_ok=True)
        else:
            self.local.put_file(tmp_file, rel)
        return rel

    def has_video(self, rel: str | None) -> bool:
        """Is the video at store-relative ``rel`` in the store?"""
        if not rel:
            return False
        return (self.root / rel).is_file() or (self.is_remote and self.files.exists(rel))

    def video_keys(self) -> set[str]:
        """Store-relative keys of every video in the store (one listing, not one request each)."""
        keys = {p.relative_to(self.root).as_posix() for p in self.videos_dir.glob("*/*") if p.is_file()}
        if self.is_remote:
            keys |= self.files.find("videos")
        return {k for k in keys if _VIDEO_KEY.fullmatch(k)}  # not the posters/strips cached beside them

    def video_file(self, video_path: str | os.PathLike[str]) -> Path:
        """A local, existing file for a DataFrame's ``video_path`` value (absolute, URL or relative).

        Views and metrics call this instead of opening ``video_path`` directly: a remote
        store's video is fetched into the local cache on first use."""
        text = str(video_path)
        if self.is_remote and text.startswith(self.location + "/"):
            text = text[len(self.location) + 1 :]
        path = Path(text)
        if not path.is_absolute():
            path = self.root / text
            if not path.is_file() and self.is_remote:
                self._fetch(text, path)
        if not path.is_file():
            raise FileNotFoundError(f"video not in the store: {video_path}")
        return path

    def _fetch(self, rel: str, dest: Path) -> None:
        tmp = self.new_tmp_path(dest.suffix)
        try:
            self.files.get_file(rel, tmp)
        except FileNotFoundError:
            tmp.unlink(missing_ok=True)
            return
        expected = Path(rel).stem
        if re.fullmatch(r"[0-9a-f]{64}", expected) and sha256_file(tmp) != expected:
            tmp.unlink(missing_ok=True)
            raise OSError(f"fetched video does not match its sha256: {rel}")
        self.local.put_file(tmp, rel)

    # -- datasets: runs, votes, ... --------------------------------------------------------
    def append(self, rows: Sequence[Mapping[str, Any]]) -> str | None:
        """Write ``rows`` as one new part file of the run log (atomically); return its key."""
        if not rows:
            return None
        unknown = set().union(*(r.keys() for r in rows)) - set(RUN_SCHEMA.names)
        if unknown:
            raise KeyError(f"unknown run log columns: {sorted(unknown)}")
        table = pa.Table.from_pylist([dict(r) for r in rows], schema=RUN_SCHEMA)
        return self.append_table("runs", table)

    def append_table(self, dataset: str, table: pa.Table, name_prefix: str = "part") -> str:
        """Write ``table`` as a new part file of ``<store>/<dataset>/`` (atomic, unique name)."""
        return self.files.write_table(dataset, table, name_prefix)

    def dataset_files(self, dataset: str) -> list[str]:
        return self.files.list(dataset)

    def part_files(self) -> list[str]:
        return self.dataset_files("runs")

    def read_dataset(self, dataset: str, schema: pa.Schema = RUN_SCHEMA) -> pa.Table:
        """Every part file of ``dataset`` unified to ``schema``.

        If a listed file vanishes (a concurrent compaction replaced it), list again: the
        compacted file was written before the old ones were removed, so a retry sees it."""
        for _ in range(READ_RETRIES):
            tables = []
            try:
                for key in self.files.list(dataset):
                    tables.append(_conform(self.files.read_table(key), schema))
            except FileNotFoundError:
                continue
            return pa.concat_tables(tables) if tables else schema.empty_table()
        raise OSError(f"{self.location}/{dataset} kept changing while being read")

    def read_table(self) -> pa.Table:
        """Every row of every run-log part file, unified to the current schema."""
        return self.read_dataset("runs", RUN_SCHEMA)

    def load(self, *, sweep_id: str | None = None, absolute_paths: bool = True, judgements: bool = True):
        """The run log as one pandas DataFrame (typed columns, UTC timestamps), oldest first.

        ``judgements``: add the latest judgement of each judge as ``judge_<name>_<dimension>``
        columns (see :mod:`kling_lab.store.judgements`; none when nothing was judged)."""
        df = _frame(_latest_revisions(self.read_table()))
        _fill_models(df)
        if len(df):
            df = df.sort_values(["logged_at", "sweep_index"], kind="stable").reset_index(drop=True)
        if sweep_id is not None:
            df = df[df["sweep_id"] == sweep_id].reset_index(drop=True)
        if absolute_paths:
            self._absolute_video_paths(df)
        if judgements:
            from kling_lab.store.judgements import join_judgements

            df = join_judgements(df, self)
        df.attrs[STORE_ATTR] = self.location
        return df

    def _absolute_video_paths(self, df) -> None:
        if len(df):
            prefix = (self.location + "/") if self.is_remote else (str(self.root.resolve()) + os.sep)
            df["video_path"] = (prefix + df["video_path"]).astype(df["video_path"].dtype)

    def compact(self, dataset: str = "runs", schema: pa.Schema = RUN_SCHEMA) -> int:
        """Merge all part files of ``dataset`` into one; return how many files were merged.

        The merged file is written before the old ones are removed, so a reader at any
        moment sees every row (rows present twice for an instant are dropped by run_id)."""
        self.require_writable()
        keys = self.files.list(dataset)
        if len(keys) < 2:
            return 0
        table = pa.concat_tables([_conform(self.files.read_table(k), schema) for k in keys])
        if dataset == "runs":
            table = _latest_revisions(table)
        self.files.write_table(dataset, table, "compact")
        for key in keys:
            self.files.delete(key)
        return len(keys)

    def iter_rows(self) -> Iterable[dict[str, Any]]:
        return _latest_revisions(self.read_table()).to_pylist()

    def rows_where(self, column: str, values: Iterable[str]) -> list[dict[str, Any]]:
        """The (newest) rows whose ``column`` is one of ``values``, without building every row:
        the runner's cache lookup in a 100k-row log converts only the rows it needs."""
        import pyarrow.compute as pc

        table = self.read_table()
        wanted = pa.array(sorted(set(values)), pa.string())
        subset = table.filter(pc.is_in(table.column(column), value_set=wanted))
        return _latest_revisions(subset).to_pylist()


def _latest_revisions(table: pa.Table) -> pa.Table:
    """One row per run_id: the newest revision (``revised_at``), else the first written."""
    if table.num_rows == 0:
        return table
    import pyarrow.compute as pc

    if pc.count_distinct(table.column("run_id")).as_py() == table.num_rows:
        return table  # no revisions, no compaction overlap: nothing to drop
    order = pc.sort_indices(table, sort_keys=[("run_id", "ascending"), ("revised_at", "descending", "at_end")])
    ordered = table.take(order)
    ids = ordered.column("run_id").to_numpy(zero_copy_only=False)
    import numpy as np

    keep = np.ones(len(ids), dtype=bool)
    keep[1:] = ids[1:] != ids[:-1]
    return ordered.filter(pa.array(keep))


def _fill_models(df) -> None:
    """Rows written before the model registry have no ``model``: take it from their endpoint."""
    missing = df["model"].isna() if "model" in df else None
    if missing is None or not missing.any():
        return
    import pandas as pd

    from kling_lab.models import model_for_endpoint

    aliases = {e: m.alias for e in df.loc[missing, "endpoint"].dropna().unique() if (m := model_for_endpoint(e))}
    if aliases:
        filled = df.loc[missing, "endpoint"].map(lambda e: aliases.get(e, pd.NA)).astype(df["model"].dtype)
        df.loc[missing, "model"] = filled


def _frame(table: pa.Table):
    return table.to_pandas(types_mapper=pandas_dtype_for)


def _conform(table: pa.Table, schema: pa.Schema = RUN_SCHEMA) -> pa.Table:
    """Add missing columns as nulls and order/cast to ``schema``."""
    if table.schema.equals(schema):
        return table  # files written by this version: nothing to add or cast
    columns = []
    for field in schema:
        if field.name in table.column_names:
            col = table.column(field.name)
            columns.append(col if col.type == field.type else col.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def rows_frame(rows: Sequence[Mapping[str, Any]], store: RunStore | None = None):
    """Rows (dicts in the schema's columns) as a DataFrame typed exactly like ``load_runs``."""
    df = _frame(pa.Table.from_pylist([dict(r) for r in rows], schema=RUN_SCHEMA))
    if store is not None:
        store._absolute_video_paths(df)
        df.attrs[STORE_ATTR] = store.location
    return df


def store_of(runs: Any, store: RunStore | str | os.PathLike[str] | None = None) -> RunStore:
    """The store to use for ``runs``: ``store`` if given, else the one the DataFrame was loaded from
    (``runs.attrs["kling_lab_store"]``, set by ``load_runs``), else the default store."""
    if store is not None:
        return RunStore.coerce(store)
    location = getattr(runs, "attrs", {}).get(STORE_ATTR)
    return RunStore(location) if location else RunStore()


def load_runs(
    store: RunStore | str | os.PathLike[str] | None = None, *, sweep_id: str | None = None, judgements: bool = True
):
    """Every run in ``store`` (default ``$KLING_LAB_STORE`` or ``./kling_runs``) as a DataFrame.

    With ``judgements`` (the default), the latest judgement of each judge on a run's video is joined
    as ``judge_<name>_<dimension>`` columns (``judge_vlm_prompt_adherence``, ...), usable wherever a
    metric is: ``effect``, compare's sort, the report, the race metric."""
    return RunStore.coerce(store).load(sweep_id=sweep_id, judgements=judgements)
