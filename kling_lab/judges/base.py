"""What a judge is, and the clips it looks at.

A judge maps one run (its row and local video) to named scores and an explanation; a pairwise
judge maps two runs of the same prompt to a preference (the counterpart of a human A/B vote). A
judge either calls a fal endpoint (a :class:`~kling_lab.runner.judging.JudgeCall` the runner makes,
with the money safety of clip requests) or computes locally for free (:class:`LocalJudge`).
Every judge has a ``name`` (the ``judge_<name>_<dimension>`` columns), a ``kind`` and a
``rubric_hash``: with the clips' sha256 it is the cache key, so no clip is judged twice for the same
rubric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from kling_lab.runner.judge_call import Clip, JudgeCall, Parsed

Kind = Literal["single", "pairwise"]
Run = Mapping[str, Any]  # a runs-DataFrame row as a mapping


@runtime_checkable
class Judge(Protocol):
    """What every judge has."""

    name: str
    kind: Kind
    endpoint: str  # the fal endpoint id, or "local"

    @property
    def rubric_hash(self) -> str: ...

    def spec(self) -> dict[str, Any]:
        """How to build this judge again (``{"factory": name, "options": {...}}``), for the journal."""


@runtime_checkable
class LocalJudge(Judge, Protocol):
    """A judge computed on this machine, for free."""

    def score(self, run: Run, video: Path) -> Parsed: ...


@runtime_checkable
class FalJudgeLike(Judge, Protocol):
    """A judge that asks a fal endpoint."""

    clips_per_call: int

    def price(self, clips: Sequence[Clip]) -> Decimal: ...

    def call(self, runs: Sequence[Run], clips: Sequence[Clip]) -> JudgeCall: ...


def clip_seconds(run: Run) -> float:
    """A clip's length: its probed duration, else the requested one, else 5 s."""
    for key in ("video_duration_s", "duration_s"):
        value = run.get(key)
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds) and seconds > 0:
            return seconds
    return 5.0


__all__ = ["FalJudgeLike", "Judge", "Kind", "LocalJudge", "Run", "clip_seconds"]
