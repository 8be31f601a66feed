"""The benchmarks in the order they run (and are numbered): name -> (title, module).

Each module has ``run(ctx: Context, section: Section) -> None`` adding its figures.
Modules are imported on demand, after the emulator has started (fal_client must not be
imported before that).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .context import Context
from .figures import Section

Runner = Callable[[Context, Section], None]

SECTIONS: dict[str, tuple[str, str]] = {
    "overhead": ("Overhead vs. a bare fal-client loop", "bench.bench_overhead"),
    "concurrency": ("Concurrency vs. the ideal", "bench.bench_concurrency"),
    "scale": ("Scale: many zero-latency requests", "bench.bench_scale"),
    "runlog": ("Run log: append, load, compaction", "bench.bench_runlog"),
    "cache": ("Cache and resume", "bench.bench_cache"),
    "qc": ("QC metrics, 10 s 720p clip (bench_qc.py)", "bench.bench_qc_section"),
    "query": ("SQL over a shared run log (DuckDB)", "bench.bench_query"),
    "adaptive": ("Adaptive: races vs fixed grids, adaptive vs uniform votes", "bench.bench_adaptive"),
}


def runner(name: str) -> Runner:
    """The ``run`` function of benchmark ``name``."""
    return importlib.import_module(SECTIONS[name][1]).run
