"""Push one store into another (e.g. a laptop's ./kling_runs into a team's s3:// store).

Idempotent and duplicate-free: only rows whose ``run_id`` (votes: ``vote_id``) the target lacks
are written (as one new part file per dataset), and only videos whose content address the
target lacks are uploaded. Journals stay where they are (they are local by design).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from kling_lab.errors import InvalidInput
from kling_lab.store.run_store import RunStore
from kling_lab.store.schema import RUN_SCHEMA

DATASET_KEYS = {"runs": "run_id", "votes": "vote_id"}


@dataclass(frozen=True)
class SyncResult:
    """What a sync copied."""

    rows: dict[str, int]
    videos: int
    video_bytes: int

    def __str__(self) -> str:
        rows = ", ".join(f"{n} {name} rows" for name, n in self.rows.items())
        return f"copied {rows}, {self.videos} videos ({self.video_bytes / 1e6:.1f} MB)"


def _read(store: RunStore, dataset: str) -> pa.Table | None:
    if dataset == "runs":
        return store.read_table()
    keys = store.dataset_files(dataset)
    if not keys:
        return None
    return pa.concat_tables([store.files.read_table(k) for k in keys], promote_options="default")


def sync(
    source: RunStore | str | os.PathLike[str], target: RunStore | str | os.PathLike[str], *, progress: bool = True
) -> SyncResult:
    """Copy into ``target`` every row and video of ``source`` it does not have yet."""
    source, target = RunStore.coerce(source), RunStore.coerce(target)
    if not source.exists():
        raise InvalidInput(f"sync: the source store {source.location} is missing; nothing to copy")
    target.require_writable()
    copied: dict[str, int] = {}
    for dataset, key in DATASET_KEYS.items():
        mine = _read(source, dataset)
        if mine is None or mine.num_rows == 0:
            copied[dataset] = 0
            continue
        theirs = _read(target, dataset)
        have = pa.array([], pa.string()) if theirs is None else theirs.column(key)
        missing = mine.filter(pc.invert(pc.is_in(mine.column(key), value_set=have)))
        if dataset == "runs":
            missing = missing.cast(RUN_SCHEMA)
        if missing.num_rows:
            target.append_table(dataset, missing)
        copied[dataset] = missing.num_rows
    have_videos = target.video_keys()
    count = size = 0
    from tqdm.auto import tqdm

    for rel in tqdm(sorted(source.video_keys() - have_videos), desc="videos", unit="clip", disable=not progress):
        local = source.video_file(rel)
        if target.is_remote:
            target.files.put_file(local, rel)
        else:
            tmp = target.new_tmp_path(local.suffix)
            tmp.write_bytes(local.read_bytes())
            target.files.put_file(tmp, rel)
        count += 1
        size += local.stat().st_size
    return SyncResult(copied, count, size)
