"""Fill the probe and QC columns of ``ok`` runs logged without them (e.g. by a version before QC existed).

Each distinct video is analysed once (cache hits share their source's file) by the function the runner
uses at download time (:func:`kling_lab.media.hook.default_media_hook`), on a small thread pool: the work is
FFmpeg decoding, which releases the GIL.

Nothing is rewritten in place: each updated row is appended again, whole, with ``revised_at`` set, and
every reader of the store (``load``, ``iter_rows``, ``compact``, ``query``) keeps the newest revision of a
``run_id``. A reader therefore sees a row either as it was or as backfilled, never half of it, on a
local or an object-storage store alike. Revisions are appended in batches as videos finish, so an
interrupted backfill keeps what it measured; a second backfill finds nothing left to fill.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any

from kling_lab.store.run_store import RunStore
from kling_lab.store.schema import PROBE_COLUMNS, QC_COLUMNS
from kling_lab.util.clock import utcnow

__all__ = ["MEDIA_COLUMNS", "backfill"]

log = logging.getLogger(__name__)

MEDIA_COLUMNS: tuple[str, ...] = (*PROBE_COLUMNS, *QC_COLUMNS)
BATCH_ROWS = 64  # revised rows per appended part file
MediaHook = Callable[[str], dict[str, Any]]
Row = dict[str, Any]


def backfill(
    store: RunStore | str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    workers: int | None = None,
    media_hook: MediaHook | None = None,
) -> int:
    """Compute the probe + QC columns that are null on ``ok`` rows whose video is in the store.

    Only null columns are filled; ``force=True`` recomputes every ``ok`` row that has a video and
    overwrites its columns where the new values differ. A video that cannot be analysed is skipped
    with a warning (its rows stay as they are). ``workers``: decoding threads (default: up to 2).
    ``media_hook``: video path → columns (default: the runner's probe + QC).
    Returns the number of rows updated (each gets a new revision; 0 when nothing was missing).
    """
    store = RunStore.coerce(store).require_writable()
    if media_hook is None:
        from kling_lab.media.hook import default_media_hook

        media_hook = default_media_hook
    targets = _targets(store, force)
    if not targets:
        return 0
    updated = 0
    batch: list[Row] = []
    for video, columns in _measure(store, list(targets), media_hook, workers or min(2, os.cpu_count() or 1), progress):
        batch.extend(_revise(row, columns, force) for row in targets[video] if _fills(row, columns, force))
        if len(batch) >= BATCH_ROWS:
            updated += _append(store, batch)
    return updated + _append(store, batch)


def _targets(store: RunStore, force: bool) -> dict[str, list[Row]]:
    """video_path → the (newest revisions of the) ok rows to analyse that use it."""
    rows = [r for r in store.iter_rows() if r.get("status") == "ok" and r.get("video_path") and (force or _missing(r))]
    stored = store.video_keys() if rows else set()
    found: dict[str, list[Row]] = {}
    for row in rows:
        if row["video_path"] in stored:  # a vanished video has nothing to measure
            found.setdefault(row["video_path"], []).append(row)
    return found


def _missing(row: Row) -> set[str]:
    return {c for c in MEDIA_COLUMNS if row.get(c) is None}


def _fills(row: Row, columns: Row, force: bool) -> bool:
    """Would ``columns`` change ``row``: any differing value with ``force``, else a value for a null column."""
    if force:
        return any(not _same(row.get(c), v) for c, v in columns.items())
    return any(columns.get(c) is not None for c in _missing(row))


def _same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def _revise(row: Row, columns: Row, force: bool) -> Row:
    """A new revision of ``row`` with the measured columns (all, or only its null ones) filled in."""
    fill = columns if force else {c: columns[c] for c in _missing(row) if columns.get(c) is not None}
    return {**row, **fill, "revised_at": utcnow()}


def _append(store: RunStore, batch: list[Row]) -> int:
    """Append ``batch`` as one part file and empty it; return how many rows it held."""
    count = len(batch)
    if batch:
        store.append(batch)
        batch.clear()
    return count


def _measure(
    store: RunStore, videos: list[str], media_hook: MediaHook, workers: int, progress: bool
) -> Iterator[tuple[str, Row]]:
    """Yield ``(video_path, media columns)`` as each video is analysed; failures are logged and skipped."""
    from tqdm.auto import tqdm

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kling-backfill")
    try:
        futures: dict[Future[Row], str] = {pool.submit(_analyse, store, v, media_hook): v for v in videos}
        with tqdm(total=len(videos), desc="backfill", unit="video", disable=not progress) as bar:
            for future in as_completed(futures):
                bar.update(1)
                try:
                    columns = future.result()
                except Exception as exc:  # noqa: BLE001 - one unreadable video must not stop the others
                    log.warning("backfill: cannot analyse %s: %s", futures[future], exc)
                    continue
                yield futures[future], {k: v for k, v in columns.items() if k in MEDIA_COLUMNS}
    finally:  # on an error or Ctrl-C: drop the queued videos, wait only for the ones being decoded
        pool.shutdown(wait=True, cancel_futures=True)


def _analyse(store: RunStore, video: str, media_hook: MediaHook) -> Row:
    return media_hook(str(store.video_file(video)))
