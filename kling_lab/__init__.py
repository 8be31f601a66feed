"""kling_lab: sweeps, run logs and comparisons for Kling 2.0 Master on fal.

The public API is re-exported here; everything else is private to its module.
"""

from kling_lab._version import __version__
from kling_lab.runner.api import resume, resume_async, run, run_async
from kling_lab.store.backfill import backfill
from kling_lab.stats.effect import Effect, effect
from kling_lab.notebooks.grid import run_grid
from kling_lab.views import ab, compare, load_votes, plot_win_rates, report, win_rates
from kling_lab.errors import (BackendConfigError, BackendError, DownloadError, InvalidInput, InvalidRequest,
                     KlingLabError, SweepFileError)
from kling_lab.request import ENDPOINT, KlingRequest
from kling_lab.runner.orchestrator import RunOptions, RunResult, Runner
from kling_lab.store.run_store import RunStore, load_runs
from kling_lab.sweep import Estimate, Sweep, SweepItem

__all__ = [
    "__version__",
    "ENDPOINT",
    "KlingRequest",
    "Sweep",
    "SweepItem",
    "Estimate",
    "run",
    "run_async",
    "resume",
    "resume_async",
    "Runner",
    "RunOptions",
    "RunResult",
    "RunStore",
    "load_runs",
    "backfill",
    "effect",
    "Effect",
    "run_grid",
    "compare",
    "ab",
    "load_votes",
    "win_rates",
    "plot_win_rates",
    "report",
    "KlingLabError",
    "InvalidInput",
    "InvalidRequest",
    "SweepFileError",
    "BackendConfigError",
    "BackendError",
    "DownloadError",
]
