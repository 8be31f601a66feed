"""kling_lab: sweeps, run logs and comparisons for Kling 2.0 Master on fal.

The public API is re-exported here; everything else is private to its module.
"""

from kling_lab._version import __version__
from kling_lab.errors import (
    BackendConfigError,
    BackendError,
    DownloadError,
    InvalidInput,
    InvalidRequest,
    KlingLabError,
    SweepFileError,
)
from kling_lab.notebooks.grid import run_grid
from kling_lab.request import ENDPOINT, KlingRequest
from kling_lab.runner.api import resume, resume_async, run, run_async
from kling_lab.runner.options import RunOptions, RunResult
from kling_lab.runner.orchestrator import Runner
from kling_lab.stats.effect import Effect, effect
from kling_lab.store.backfill import backfill
from kling_lab.store.query import query
from kling_lab.store.run_store import RunStore, load_runs
from kling_lab.sweep import Estimate, Sweep, SweepItem
from kling_lab.views import ab, compare, load_votes, plot_win_rates, report, win_rates

__all__ = [
    "ENDPOINT",
    "BackendConfigError",
    "BackendError",
    "DownloadError",
    "Effect",
    "Estimate",
    "InvalidInput",
    "InvalidRequest",
    "KlingLabError",
    "KlingRequest",
    "RunOptions",
    "RunResult",
    "RunStore",
    "Runner",
    "Sweep",
    "SweepFileError",
    "SweepItem",
    "__version__",
    "ab",
    "backfill",
    "compare",
    "effect",
    "load_runs",
    "load_votes",
    "plot_win_rates",
    "query",
    "report",
    "resume",
    "resume_async",
    "run",
    "run_async",
    "run_grid",
    "win_rates",
]
