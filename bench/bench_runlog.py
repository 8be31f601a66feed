"""4. Run log: the cost of appending a row, of loading 10k and 100k rows, and of compaction.

Rows are synthetic (every column a real row fills) and go through the real
``RunStore.append``: in batches of 1,000 for the 10k/100k stores (one part file per
batch), and one row per call, as the runner writes them, for the one-file-per-row case.
Also: how much a ``kling_lab.run`` of one new request slows down in a 100k-row store
(its cache lookup reads the run log) compared with an empty store, side by side.
"""

from __future__ import annotations

import time
from pathlib import Path

from kling_lab.store.run_store import RunStore, load_runs

from .context import Context
from .figures import Section
from .measure import median, timed
from .synthetic import synthetic_rows
from .workloads import bench_inputs, kling_lab_run

TARGET_LOAD_S = 1.0
BATCH = 1000


def _load_s(store: Path, repeats: int) -> tuple[float, int]:
    """Median wall seconds of ``load_runs(store)`` and the number of rows it returned."""
    times, rows = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        rows = len(load_runs(store))
        times.append(time.perf_counter() - started)
    return median(times), rows


def _single_row_store(ctx: Context, section: Section, files: int) -> None:
    """One file per row: append cost, load time, compaction (files and load before/after)."""
    store = RunStore(ctx.fresh_dir("runlog-single"))
    walls, cpus = [], []
    for i in range(files):
        sample, _ = timed(lambda: store.append(synthetic_rows(i, 1)))
        walls.append(sample.wall_s)
        cpus.append(sample.cpu_s)
    section.add("append_ms_per_row", "append 1 row (1 file), median wall", 1000 * median(walls), "ms")
    section.add("append_cpu_ms_per_row", "append 1 row (1 file), median CPU", 1000 * median(cpus), "ms")
    before, rows = _load_s(store.root, 1)
    assert rows == files, (rows, files)
    section.add("single_files_before", f"one file per row: files for {files:,} rows", len(store.part_files()), "files")
    section.add("single_load_s", f"load {files:,} rows from {files:,} files", before, "s")
    section.add("single_load_10k_est_s", "load 10k rows from 10,000 files (est., linear)", before * 10_000 / files, "s")
    compaction, merged = timed(store.compact)
    after, rows = _load_s(store.root, 3)
    assert rows == files and merged == files, (rows, merged, files)
    section.add("compact_s", f"compact {files:,} files", compaction.wall_s, "s")
    section.add("single_files_after", "files after compaction", len(store.part_files()), "files")
    section.add("single_load_after_s", f"load {files:,} rows after compaction", after, "s")


def _batched_store(ctx: Context, section: Section, small: int, large: int) -> Path:
    """``large`` rows in batches of BATCH: load at ``small`` rows and at ``large`` rows."""
    store = RunStore(ctx.fresh_dir("runlog-batched"))
    batch = min(BATCH, small)
    cpu = 0.0
    for start in range(0, large, batch):
        rows = synthetic_rows(start, batch)
        sample, _ = timed(lambda: store.append(rows))
        cpu += sample.cpu_s
        if start + batch == small:
            load, count = _load_s(store.root, 3)
            assert count == small, (count, small)
            section.add("load_small_s", f"load_runs: {small:,} rows, {len(store.part_files())} files", load, "s")
    section.add("append_batched_us_per_row", f"append in batches of {batch:,}, CPU per row", 1e6 * cpu / large, "µs")
    load, count = _load_s(store.root, 3)
    assert count == large, (count, large)
    section.add("load_large_s", f"load_runs: {large:,} rows, {len(store.part_files())} files", load, "s", TARGET_LOAD_S)
    compaction, _ = timed(store.compact)
    section.add("compact_large_s", f"compact {large:,} rows into 1 file", compaction.wall_s, "s")
    load, _ = _load_s(store.root, 3)
    section.add("load_large_compacted_s", f"load_runs: {large:,} rows, 1 file", load, "s", TARGET_LOAD_S)
    return store.root


def _startup(ctx: Context, section: Section, big_store: Path, rounds: int) -> None:
    """``kling_lab.run`` of one new request in the big store vs. an empty store, alternating."""
    ctx.emulator.reset(queue_delay_s=0.0, service_time_s=0.0, concurrency=4, render_scale=0.1, fps=8)
    empty = ctx.fresh_dir("runlog-empty")
    walls: dict[str, list[float]] = {"empty": [], "big": []}
    for r in range(rounds):
        for name in ("empty", "big") if r % 2 == 0 else ("big", "empty"):
            store = big_store if name == "big" else empty
            sample, _ = timed(lambda: kling_lab_run(bench_inputs(1, f"startup-{r}-{name}"), 1, store))
            walls[name].append(sample.wall_s)
    big, small = median(walls["big"]), median(walls["empty"])
    rows = len(load_runs(big_store))
    section.add(
        "run_in_big_store_extra_s",
        f"kling_lab.run of 1 request: {rows:,}-row store minus empty store",
        big - small,
        "s",
        TARGET_LOAD_S,
    )
    section.add("run_in_empty_store_s", "kling_lab.run of 1 request, empty store", small, "s")


def run(ctx: Context, section: Section) -> None:
    single, small, large = ctx.size((500, 10_000, 100_000), (20, 500, 2_000))
    _single_row_store(ctx, section, single)
    big = _batched_store(ctx, section, small, large)
    _startup(ctx, section, big, ctx.size(4, 2))
    section.notes += [
        "load_runs = read every part file, unify the schema, drop superseded revisions, sort, to pandas",
        f"10k-file figure extrapolated linearly from {single:,} one-row files (reading cost is per file); "
        "the runner compacts a store of more than 64 part files at the end of each run",
    ]
