"""Judges: score every clip automatically, and measure how far to trust the judge.

Built in: ``qc`` (the weight-free QC metrics, local and free), ``vlm`` (one clip to a fal
vision-language endpoint with a rubric) and ``pairwise`` (two clips of one prompt to a video LLM,
which prefers one: the counterpart of a human A/B vote). Judges are looked up by name like
backends: ``register_judge("name", factory)`` in a notebook, or the ``kling_lab.judges`` entry point
group in an installed package::

    [project.entry-points."kling_lab.judges"]
    my-judge = "my_plugin:make_judge"      # make_judge(**options) -> a Judge

``judge`` (:mod:`~kling_lab.judges.api`) runs one over a store's clips through the runner (budget,
journal, resume, cache); ``judge_agreement`` (:mod:`~kling_lab.judges.agreement`) says how often it
agrees with your own blind votes.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from kling_lab.errors import InvalidInput
from kling_lab.judges.base import FalJudgeLike, Judge, LocalJudge

JudgeFactory = Callable[..., Any]
ENTRY_POINT_GROUP = "kling_lab.judges"
_REGISTRY: dict[str, JudgeFactory] = {}
_PLUGINS: dict[str, EntryPoint] | None = None


def _plugins() -> dict[str, EntryPoint]:
    global _PLUGINS
    if _PLUGINS is None:
        _PLUGINS = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _PLUGINS


def register_judge(name: str, factory: JudgeFactory) -> None:
    """Make ``get_judge(name, **options)`` call ``factory(**options)``."""
    _REGISTRY[name] = factory


def judge_names() -> list[str]:
    """Every judge that can be named: built in, registered in code, or from an installed package."""
    return sorted({*_REGISTRY, *_plugins()})


def get_judge(judge: str | Any = "vlm", **options: Any) -> Any:
    """A judge by name (options: ``rubric``, ``name``, ``endpoint``, ``model``, ...); a judge object is returned as is."""
    if not isinstance(judge, str):
        if not isinstance(judge, Judge):
            raise InvalidInput(f"judge: expected a judge's name or a Judge; got {type(judge).__name__}")
        return judge
    factory = _REGISTRY.get(judge)
    if factory is None and judge in _plugins():
        try:
            factory = _REGISTRY[judge] = _plugins()[judge].load()
        except Exception as exc:
            raise InvalidInput(f"judge {judge!r} ({_plugins()[judge].value}) could not be loaded: {exc}") from exc
    if factory is None:
        raise InvalidInput(f"unknown judge {judge!r}; choose one of: {', '.join(judge_names())}")
    try:
        made = factory(**{k: v for k, v in options.items() if v is not None})
    except TypeError as exc:
        raise InvalidInput(f"judge {judge!r}: {exc}") from None
    if not isinstance(made, Judge):
        raise InvalidInput(f"judge {judge!r}: its factory returned {type(made).__name__}, not a Judge")
    return made


def _qc(**options: Any) -> Any:
    from kling_lab.judges.qc import QcJudge

    return QcJudge(**options)


def _vlm(**options: Any) -> Any:
    from kling_lab.judges.vlm import VlmJudge

    return VlmJudge(**options)


def _pairwise(**options: Any) -> Any:
    from kling_lab.judges.pairwise import PairwiseJudge

    return PairwiseJudge(**options)


register_judge("qc", _qc)
register_judge("vlm", _vlm)
register_judge("pairwise", _pairwise)

__all__ = [
    "ENTRY_POINT_GROUP",
    "FalJudgeLike",
    "Judge",
    "JudgeFactory",
    "LocalJudge",
    "get_judge",
    "judge_names",
    "register_judge",
]
