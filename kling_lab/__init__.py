"""kling_lab: sweeps, run logs and comparisons for Kling 2.0 Master on fal.

The public API is re-exported here; everything else is private to its module.
"""

from ._version import __version__
from .api import resume, resume_async, run, run_async
from .backfill import backfill
from .effect import Effect, effect
from .notebooks import run_grid
from .views import ab, compare, load_votes, plot_win_rates, report, win_rates
from .errors import (BackendConfigError, BackendError, DownloadError, InvalidInput, InvalidRequest,
                     KlingLabError, SweepFileError)
from .request import ENDPOINT, KlingRequest
from .runner import RunOptions, RunResult, Runner
from .store import RunStore, load_runs
from .sweep import Estimate, Sweep, SweepItem

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
