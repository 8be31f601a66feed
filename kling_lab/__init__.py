"""kling_lab: sweeps, run logs and comparisons for Kling 2.0 Master on fal.

The public API is re-exported here; everything else is private to its module. Names are imported
on first use (PEP 562), so ``import kling_lab`` and the ``kling-lab`` command start in a fraction
of a second (a Ctrl-C in the first second meets kling_lab's own handler, not an import); the
imports under ``TYPE_CHECKING`` tell type checkers and editors what each name is.
"""

import importlib as _importlib
import typing as _typing

from kling_lab._version import __version__

if _typing.TYPE_CHECKING:
    from kling_lab.errors import (
        BackendConfigError,
        BackendError,
        DownloadError,
        InvalidInput,
        InvalidRequest,
        KlingLabError,
        SweepFileError,
    )
    from kling_lab.judges import get_judge, register_judge
    from kling_lab.judges.agreement import Agreement, judge_agreement
    from kling_lab.judges.api import JudgeEstimate, JudgeResult, estimate_judge, judge, load_judgements
    from kling_lab.judges.metric import judge_metric
    from kling_lab.judges.rubric import Rubric
    from kling_lab.models import Endpoint, Model, get_model, list_models, register_model
    from kling_lab.models.pricing import ByDuration, Flat, PerClip, PerSecond, UserPrice
    from kling_lab.notebooks.grid import run_grid
    from kling_lab.request import ENDPOINT, KlingRequest
    from kling_lab.runner.api import resume, resume_async, run_async
    from kling_lab.runner.options import RunOptions, RunResult
    from kling_lab.runner.orchestrator import Runner
    from kling_lab.runner.race import RaceResult
    from kling_lab.stats.effect import Effect, effect
    from kling_lab.stats.models import model_table
    from kling_lab.stats.plan import Plan, plan
    from kling_lab.store.backfill import backfill
    from kling_lab.store.query import query
    from kling_lab.store.run_store import RunStore, load_runs
    from kling_lab.sweep import Estimate, Sweep, SweepItem
    from kling_lab.views import ab, compare, load_votes, plot_win_rates, report, win_rates
    from kling_lab.views.live import LiveRun, run, watch

# public name -> the module it lives in
_WHERE: dict[str, str] = {
    **dict.fromkeys(
        [
            "BackendConfigError",
            "BackendError",
            "DownloadError",
            "InvalidInput",
            "InvalidRequest",
            "KlingLabError",
            "SweepFileError",
        ],
        "kling_lab.errors",
    ),
    **dict.fromkeys(["Endpoint", "Model", "get_model", "list_models", "register_model"], "kling_lab.models"),
    **dict.fromkeys(["ByDuration", "Flat", "PerClip", "PerSecond", "UserPrice"], "kling_lab.models.pricing"),
    "model_table": "kling_lab.stats.models",
    **dict.fromkeys(["get_judge", "register_judge"], "kling_lab.judges"),
    **dict.fromkeys(["Agreement", "judge_agreement"], "kling_lab.judges.agreement"),
    **dict.fromkeys(
        ["JudgeEstimate", "JudgeResult", "estimate_judge", "judge", "load_judgements"], "kling_lab.judges.api"
    ),
    "Rubric": "kling_lab.judges.rubric",
    "judge_metric": "kling_lab.judges.metric",
    "run_grid": "kling_lab.notebooks.grid",
    "ENDPOINT": "kling_lab.request",
    "KlingRequest": "kling_lab.request",
    **dict.fromkeys(["resume", "resume_async", "run_async"], "kling_lab.runner.api"),
    **dict.fromkeys(["LiveRun", "run", "watch"], "kling_lab.views.live"),  # run: runner.api.run + show=True
    "Runner": "kling_lab.runner.orchestrator",
    **dict.fromkeys(["RunOptions", "RunResult"], "kling_lab.runner.options"),
    "RaceResult": "kling_lab.runner.race",
    "Effect": "kling_lab.stats.effect",
    "effect": "kling_lab.stats.effect",
    "Plan": "kling_lab.stats.plan",
    "plan": "kling_lab.stats.plan",
    "backfill": "kling_lab.store.backfill",
    "query": "kling_lab.store.query",
    "RunStore": "kling_lab.store.run_store",
    "load_runs": "kling_lab.store.run_store",
    **dict.fromkeys(["Estimate", "Sweep", "SweepItem"], "kling_lab.sweep"),
    **dict.fromkeys(["ab", "compare", "load_votes", "plot_win_rates", "report", "win_rates"], "kling_lab.views"),
}


def __getattr__(name: str) -> _typing.Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'kling_lab' has no attribute {name!r}")
    value = getattr(_importlib.import_module(where), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


__all__ = [
    "ENDPOINT",
    "Agreement",
    "BackendConfigError",
    "BackendError",
    "ByDuration",
    "DownloadError",
    "Effect",
    "Endpoint",
    "Estimate",
    "Flat",
    "InvalidInput",
    "InvalidRequest",
    "JudgeEstimate",
    "JudgeResult",
    "KlingLabError",
    "KlingRequest",
    "LiveRun",
    "Model",
    "PerClip",
    "PerSecond",
    "Plan",
    "RaceResult",
    "Rubric",
    "RunOptions",
    "RunResult",
    "RunStore",
    "Runner",
    "Sweep",
    "SweepFileError",
    "SweepItem",
    "UserPrice",
    "__version__",
    "ab",
    "backfill",
    "compare",
    "effect",
    "estimate_judge",
    "get_judge",
    "get_model",
    "judge",
    "judge_agreement",
    "judge_metric",
    "list_models",
    "load_judgements",
    "load_runs",
    "load_votes",
    "model_table",
    "plan",
    "plot_win_rates",
    "query",
    "register_judge",
    "register_model",
    "report",
    "resume",
    "resume_async",
    "run",
    "run_async",
    "run_grid",
    "watch",
    "win_rates",
]
