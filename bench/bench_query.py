"""7. ``kling_lab.query``: a group-by over a 100k-row run log, read in place by DuckDB.

The store is written through the real ``RunStore.append`` in batches of 1,000 (100 part
files), queried, compacted, and queried again. ``load_runs`` of the same store is measured
side by side as the reference.
"""

from __future__ import annotations

import time

from kling_lab.store.query import query
from kling_lab.store.run_store import RunStore, load_runs

from .context import Context
from .figures import Section
from .measure import median
from .synthetic import synthetic_rows

TARGET_S = 1.0
SQL = (
    "select user, date_trunc('week', logged_at) as week, count(*) as runs, sum(cost_usd) as usd "
    "from runs group by all order by all"
)


def _median_s(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return median(times)


def run(ctx: Context, section: Section) -> None:
    rows = ctx.size(100_000, 2_000)
    batch = min(1000, rows)
    store = RunStore(ctx.fresh_dir("query"))
    for start in range(0, rows, batch):
        store.append(synthetic_rows(start, batch))
    files = len(store.part_files())
    result = query(SQL, store)
    assert int(result["runs"].sum()) == rows, result
    section.add(
        "group_by_s",
        f"query: spend per user per week, {rows:,} rows, {files} files",
        _median_s(lambda: query(SQL, store)),
        "s",
        TARGET_S,
    )
    section.add(
        "load_runs_s", f"reference: load_runs of the same {rows:,} rows", _median_s(lambda: load_runs(store)), "s"
    )
    store.compact()
    section.add(
        "group_by_compacted_s",
        "query: the same after compaction (1 file)",
        _median_s(lambda: query(SQL, store)),
        "s",
        TARGET_S,
    )
    section.notes.append(f"SQL: {SQL}")
