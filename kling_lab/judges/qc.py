"""The ``qc`` judge: today's weight-free QC metrics as judge scores, computed here, free.

Scores are the run's ``qc_*`` columns (computed from the video when the row lacks them), named
without the prefix (``judge_qc_motion`` mirrors ``qc_motion``), so the QC metrics sit beside the
model judges in the same dataset and agreement tables.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

from kling_lab.judges.base import Kind, Run
from kling_lab.runner.judge_call import Parsed
from kling_lab.store.schema import QC_COLUMNS
from kling_lab.util.text import canonical_json

VERSION = 1  # bump when a metric's formula changes


class QcJudge:
    """Local, free: the ``qc_*`` metrics of a clip."""

    kind: ClassVar[Kind] = "single"
    endpoint = "local"
    factory = "qc"

    def __init__(self, *, name: str | None = None) -> None:
        self.name = name or self.factory

    def __repr__(self) -> str:
        return f"QcJudge(name={self.name!r})"

    @property
    def rubric_hash(self) -> str:
        import hashlib

        return hashlib.sha256(canonical_json({"metrics": QC_COLUMNS, "version": VERSION}).encode()).hexdigest()

    def spec(self) -> dict[str, Any]:
        return {"factory": self.factory, "options": {"name": self.name}}

    def score(self, run: Run, video: Path) -> Parsed:
        values = {c: run.get(c) for c in QC_COLUMNS}
        if any(not _number(v) for v in values.values()):
            from kling_lab.media.qc import compute_qc

            values = dict(compute_qc(video))
        scores = {c.removeprefix("qc_"): float(v) for c, v in values.items() if _number(v)}  # type: ignore[arg-type]
        return Parsed(scores=scores, explanation="weight-free QC metrics (see kling_lab.media.qc for each formula)")


def _number(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


__all__ = ["QcJudge"]
