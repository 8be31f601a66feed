"""A judge's score as a per-row metric, judging clips when first asked: the race metric.

::

    metric = kl.judge_metric("vlm", "prompt_adherence", store="kling_runs", max_cost_usd=2)
    kl.run(sweep, strategy="race", metric=metric, higher_is_better=True, store="kling_runs")

A race (:mod:`kling_lab.runner.race`) calls its metric on each new ok row of a round. The first row
whose clip has no judgement yet makes the metric judge every clip of that round's sweep at once
(through the runner: cache, journal, cap), so a round costs one judging pass; its scores are then
read from the store. ``max_cost_usd`` caps the judging spend across every call of this metric (the
race's own ``max_cost_usd`` caps its clips). A row the judge could not score reads NaN, which the
race leaves out.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from kling_lab.judges import get_judge
from kling_lab.store import judgements as dataset
from kling_lab.store.run_store import RunStore


class JudgeMetric:
    """``metric(row) -> float``: ``judge``'s ``dimension`` (default: the sum of its scores) for the row's clip."""

    def __init__(
        self,
        judge: str = "vlm",
        dimension: str | None = None,
        *,
        store: RunStore | str | os.PathLike[str] | None = None,
        backend: str = "emulator",
        max_cost_usd: float | None = None,
        **judge_options: Any,
    ) -> None:
        self.judge = get_judge(judge, **judge_options)  # bad input: one line, now
        self.options = judge_options
        self.dimension = dimension
        self.store = RunStore.coerce(store)
        self.backend = backend
        self.max_cost_usd = max_cost_usd
        self.spent_usd = 0.0
        self.__qualname__ = dataset.column_prefix(self.judge.name) + (dimension or "total")
        self._scores: dict[str, float] = {}
        self._tried: set[str] = set()  # sweeps judged already (a clip left unscored is not asked again)

    def __repr__(self) -> str:
        return f"JudgeMetric({self.__qualname__})"

    def __call__(self, row: Mapping[str, Any]) -> float:
        sha = row.get("video_sha256")
        if not isinstance(sha, str):
            return math.nan
        if sha not in self._scores:
            self._read()
        sweep = row.get("sweep_id")
        if sha not in self._scores and isinstance(sweep, str) and sweep not in self._tried:
            self._tried.add(sweep)
            self._judge(sweep)
            self._read()
        return self._scores.get(sha, math.nan)

    def _judge(self, sweep_id: str) -> None:
        from kling_lab.judges.api import judge

        cap = None if self.max_cost_usd is None else max(0.0, self.max_cost_usd - self.spent_usd)
        result = judge(
            self.store.load(sweep_id=sweep_id, judgements=False),
            self.judge,
            store=self.store,
            backend=self.backend,
            max_cost_usd=cap,
            progress=False,
        )
        self.spent_usd += result.spent_usd

    def _read(self) -> None:
        frame = dataset.judgements_frame(self.store)
        if not len(frame):
            return
        mine = frame[(frame["judge"] == self.judge.name) & (frame["status"] == "ok") & (frame["kind"] == "single")]
        mine = mine[mine["rubric_hash"] == self.judge.rubric_hash]
        for row in mine.itertuples(index=False):
            value = _score(row.scores_json, self.dimension)
            if value is not None and not pd.isna(row.video_sha256):
                self._scores[str(row.video_sha256)] = value


def _score(text: Any, dimension: str | None) -> float | None:
    try:
        values = json.loads(str(text or "{}"))
    except ValueError:
        return None
    numbers = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if dimension is not None:
        return numbers.get(dimension)
    return sum(numbers.values()) if numbers else None


def judge_metric(judge: str = "vlm", dimension: str | None = None, **options: Any) -> JudgeMetric:
    """A judge's score as a per-row metric (see the module docstring): for ``kl.run(..., strategy="race", metric=...)``."""
    return JudgeMetric(judge, dimension, **options)


__all__ = ["JudgeMetric", "judge_metric"]
