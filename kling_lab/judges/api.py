"""Judging a store's clips: ``judge``, ``estimate_judge``, ``load_judgements``, and resuming judge calls.

::

    kl.judge(runs, judge="vlm", store=..., max_cost_usd=1)     # or judge="pairwise" (voted pairs), "qc"
    kl.load_runs(store)["judge_vlm_prompt_adherence"]          # the scores, beside every other column
    kl.effect(df, param="cfg_scale", metric="judge_vlm_prompt_adherence")

Bad input (an unknown judge, a rubric without dimensions, runs with no video, a model kling_lab
cannot price) is one line before anything is sent. Judge calls go through the runner
(:mod:`kling_lab.runner.judging`): the cap covers their spend, they are journaled and re-attached
after a crash, and a clip already judged with the same rubric on the same backend costs nothing.
A local judge (``qc``) computes and writes its rows here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd

from kling_lab.backends import Backend
from kling_lab.errors import InvalidInput
from kling_lab.judges import get_judge
from kling_lab.judges.base import FalJudgeLike, LocalJudge
from kling_lab.judges.local import judge_locally, local_fingerprint
from kling_lab.judges.selection import Judged, arm_pairs, select_runs, singles, voted_pairs
from kling_lab.runner.api import make_runner
from kling_lab.runner.journal import Journal, PendingRequest
from kling_lab.runner.judge_call import KIND, Clip, JudgeCall
from kling_lab.runner.judging import JudgeRunner
from kling_lab.runner.options import RunOptions, RunResult
from kling_lab.runner.plan import Plan
from kling_lab.store import judgements as dataset
from kling_lab.store.run_store import RunStore
from kling_lab.util.loop_thread import run_sync

StoreLike = RunStore | str | os.PathLike[str] | None


@dataclass
class JudgeResult:
    """What a judging pass did."""

    judge: str
    backend: str
    store: RunStore
    selected: int  # clips (or pairs) selected
    cached: int = 0  # judged before with this rubric: nothing sent, no row
    rows: list[dict[str, Any]] = field(default_factory=list)  # the judgement rows written
    run: RunResult | None = None  # the runner's result (None for a local judge or nothing to send)

    @property
    def written(self) -> int:
        return len(self.rows)

    @property
    def spent_usd(self) -> float:
        return round(sum(r.get("cost_usd") or 0.0 for r in self.rows), 6)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.get("status") == status)

    @property
    def pending(self) -> int:
        return self.run.pending if self.run is not None else 0

    @property
    def interrupted(self) -> bool:
        return bool(self.run is not None and self.run.interrupted)

    def frame(self) -> pd.DataFrame:
        """The rows written, as :func:`load_judgements` types them."""
        import pyarrow as pa

        table = pa.Table.from_pylist(
            [{k: v for k, v in r.items() if k in dataset.SCHEMA.names} for r in self.rows], schema=dataset.SCHEMA
        )
        return table.to_pandas(types_mapper=dataset.pandas_dtype_for)

    def summary(self) -> str:
        parts = [f"{self.count('ok')} ok", f"{self.count('failed')} failed"]
        for status in ("cancelled", "skipped_budget"):
            if self.count(status):
                parts.append(f"{self.count(status)} {status.replace('_', ' ')}")
        if self.cached:
            parts.append(f"{self.cached} judged before (cache, $0)")
        if self.pending:
            parts.append(f"{self.pending} still at fal: run `kling-lab judge` again (or `kling-lab resume`)")
        if self.backend == "emulator":
            money = f"${self.spent_usd:.2f} at fal prices (emulator: PLACEHOLDER scores, nothing was spent)"
        elif self.backend == "local":
            money = "$0 (computed here)"
        else:
            money = f"spent ${self.spent_usd:.2f}"
        head = "interrupted: " if self.interrupted else ""
        return (
            f"{head}judge {self.judge}: {self.selected} selected: {', '.join(parts)}; {self.written} written; {money}"
        )

    __str__ = summary

    def _repr_html_(self) -> str:
        from html import escape

        return f"<pre>{escape(self.summary())}</pre>"


@dataclass(frozen=True)
class JudgeEstimate:
    """What a judging pass would cost, before it starts."""

    judge: str
    backend: str
    selected: int
    cached: int
    reattached: int
    to_send: int
    usd: float  # at most, if every call is sent once (an invalid answer is asked once more: up to 2x)
    pricing: str
    skipped_no_video: int = 0
    judge_kind: str = "single"

    def summary(self) -> str:
        what = "pairs" if self.judge_kind == "pairwise" else "clips"
        parts = [f"{self.cached} judged before ($0)"] if self.cached else []
        if self.reattached:
            parts.append(f"{self.reattached} already sent (collected, not paid again)")
        parts.append(f"{self.to_send} to send")
        tail = f"; {self.skipped_no_video} ok runs without a video skipped" if self.skipped_no_video else ""
        return (
            f"judge {self.judge} on {self.backend}: {self.selected} {what}: {', '.join(parts)}; "
            f"${self.usd:.4f} at most ({self.pricing}; an invalid answer is asked once more){tail}"
        )

    __str__ = summary


# -- what to judge ------------------------------------------------------------------------------
def _selection(
    the_judge: Any,
    runs: pd.DataFrame | None,
    store: RunStore,
    backend: str,
    *,
    sweep_id: str | None,
    votes: pd.DataFrame | None,
    by: str | None,
) -> tuple[list[Judged], int]:
    chosen = select_runs(runs, store, sweep_id)
    if the_judge.kind != "pairwise":
        return singles(chosen, store, backend)
    if by is not None:
        return arm_pairs(chosen, by, store, backend)
    if votes is None:
        from kling_lab.store.votes import load_votes

        votes = load_votes(store)
    return voted_pairs(chosen, votes, store, backend)


def _calls(the_judge: FalJudgeLike, items: Sequence[Judged]) -> list[JudgeCall]:
    return [the_judge.call(list(item.runs), list(item.clips)) for item in items]


def _backend_name(backend: str | Backend | None) -> str:
    if backend is None:
        return "emulator"
    return backend if isinstance(backend, str) else str(getattr(backend, "name", "custom"))


def _pending_judge_calls(store: RunStore, backend: str) -> dict[tuple[str, str], PendingRequest]:
    journal = Journal(store.journal_dir)
    return {
        (p.endpoint, p.fingerprint): p
        for p in journal.pending().values()
        if p.backend == backend and p.sweep.get("kind") == KIND
    }


# -- judging ------------------------------------------------------------------------------------
async def judge_async(
    runs: pd.DataFrame | None = None,
    judge: Any = "vlm",
    *,
    store: StoreLike = None,
    backend: str | Backend | None = "emulator",
    max_cost_usd: float | None = None,
    rubric: Any = None,
    sweep_id: str | None = None,
    votes: pd.DataFrame | None = None,
    by: str | None = None,
    announce: bool = False,
    backend_options: Mapping[str, Any] | None = None,
    concurrency: int = 4,
    force: bool = False,
    progress: bool = True,
    request_timeout_s: float | None = None,
    observers: Sequence[Any] = (),
    **judge_options: Any,
) -> JudgeResult:
    """See :func:`judge`."""
    the_judge = get_judge(judge, rubric=rubric, **judge_options)  # unknown judge / bad rubric: one line
    RunOptions(concurrency=concurrency, max_cost_usd=max_cost_usd, request_timeout_s=request_timeout_s)
    the_store = RunStore.coerce(store)
    if isinstance(the_judge, LocalJudge) and not isinstance(the_judge, FalJudgeLike):
        items, _ = _selection(the_judge, runs, the_store, "local", sweep_id=sweep_id, votes=votes, by=by)
        rows, skipped = judge_locally(the_judge, items, the_store.require_writable(), force=force)
        return JudgeResult(the_judge.name, "local", the_store, len(items), cached=skipped, rows=rows)
    name = _backend_name(backend)
    items, _ = _selection(the_judge, runs, the_store, name, sweep_id=sweep_id, votes=votes, by=by)
    calls = _calls(the_judge, items)
    cached = {} if force else dataset.cached_ok(the_store, [c.fingerprint for c in calls], name)
    pending = _pending_judge_calls(the_store, name)
    left = [
        c
        for c in calls
        if c.fingerprint not in cached
        or (c.endpoint_id, c.fingerprint) in pending
        or (c.endpoint_id, c.retry_fingerprint) in pending
    ]
    result = JudgeResult(the_judge.name, name, the_store, len(calls), cached=len(calls) - len(left))
    if not left:  # everything judged before: no backend to start, nothing to pay
        return result
    runner = make_judge_runner(
        backend,
        the_store,
        backend_options=backend_options,
        concurrency=concurrency,
        max_cost_usd=max_cost_usd,
        force=force,
        progress=progress,
        request_timeout_s=request_timeout_s,
        observers=observers,
    )

    plans: list[Plan] = []

    def show(plan: Plan) -> None:
        plans.append(plan)  # its cache hits: judged by a run killed after its row, before its journal "done"
        if announce or runner.backend.name == "fal":
            print(
                describe_plan(the_judge.name, runner.backend.name, plan, runner.options.max_cost_usd), file=sys.stderr
            )

    try:
        run = await runner.judge(left, label=f"judge {the_judge.name}", on_plan=show)
    finally:
        await runner.backend.aclose()
    result.run = run
    result.rows = list(run.rows)
    result.cached += sum(plan.cached for plan in plans)
    return result


def judge(runs: pd.DataFrame | None = None, judge: Any = "vlm", **options: Any) -> JudgeResult:
    """Judge every clip of ``runs`` (default: every ok run in the store) not judged before.

    ``judge``: ``"vlm"`` (default; one clip to ``fal-ai/video-understanding`` with a rubric),
    ``"pairwise"`` (two clips of one prompt to a video LLM: your voted pairs, or every pair across
    arms of ``by=``), ``"qc"`` (local QC metrics, free), or a registered judge's name. Options:
    ``store``, ``backend`` (``"emulator"``, the default: PLACEHOLDER scores, free; ``"fal"``: real,
    needs FAL_KEY, capped at ``max_cost_usd``, default $25), ``max_cost_usd``, ``rubric`` (YAML
    text, a file or a mapping), ``name`` (the columns' ``judge_<name>_…``), ``endpoint``, ``model``,
    ``max_tokens``, ``usd_per_call``, ``sweep_id``, ``votes``, ``by``, ``concurrency``, ``force``
    (judge again), ``progress``, ``announce`` (print the plan line on the emulator too).

    The judge is a model: before trusting its scores, read :func:`kling_lab.judge_agreement`."""
    return run_sync(lambda: judge_async(runs, judge, **options))


def describe_plan(judge: str, backend: str, plan: Plan, cap_usd: float | None) -> str:
    """One line for stderr before judge calls are sent."""
    parts = []
    if plan.cached:
        parts.append(f"{plan.cached} judged before ($0)")
    if plan.reattached:
        parts.append(f"{plan.reattached} already sent (collected, not paid again)")
    parts.append(f"{plan.to_submit} to send")
    head = f"judge {judge}: {plan.total} call{'' if plan.total == 1 else 's'}: {', '.join(parts)}"
    if backend == "emulator":
        return f"emulator (free, PLACEHOLDER scores, not a model's): {head}; ${plan.to_pay_usd:.4f} at fal prices"
    cap = f"; cap ${cap_usd:.2f}" if cap_usd is not None else ""
    return f"{backend}: {head}; at most ${plan.to_pay_usd:.4f} to pay{cap}"


# -- estimating ---------------------------------------------------------------------------------
def estimate_judge(
    runs: pd.DataFrame | None = None,
    judge: Any = "vlm",
    *,
    store: StoreLike = None,
    backend: str | None = "emulator",
    rubric: Any = None,
    sweep_id: str | None = None,
    votes: pd.DataFrame | None = None,
    by: str | None = None,
    force: bool = False,
    **judge_options: Any,
) -> JudgeEstimate:
    """What judging would send and cost, before anything starts (reads the store and the journal only)."""
    the_judge = get_judge(judge, rubric=rubric, **judge_options)
    the_store = RunStore.coerce(store)
    local = not isinstance(the_judge, FalJudgeLike)
    name = "local" if local else _backend_name(backend)
    items, missing = _selection(the_judge, runs, the_store, name, sweep_id=sweep_id, votes=votes, by=by)
    if local:
        fingerprints = [local_fingerprint(the_judge, item.clips[0]) for item in items]
        cached = 0 if force else len(dataset.cached_ok(the_store, fingerprints, "local"))
        return JudgeEstimate(
            the_judge.name, "local", len(items), cached, 0, len(items) - cached, 0.0, "free (local)", missing
        )
    calls = _calls(the_judge, items)
    found = {} if force else dataset.cached_ok(the_store, [c.fingerprint for c in calls], name)
    pending = _pending_judge_calls(the_store, name)
    reattached = sum(
        1 for c in calls if (c.endpoint_id, c.fingerprint) in pending or (c.endpoint_id, c.retry_fingerprint) in pending
    )
    new = [
        c
        for c in calls
        if c.fingerprint not in found
        and (c.endpoint_id, c.fingerprint) not in pending
        and (c.endpoint_id, c.retry_fingerprint) not in pending
    ]
    usd = float(sum((c.price for c in new), Decimal(0)))
    cached = sum(1 for c in calls if c.fingerprint in found)
    return JudgeEstimate(
        the_judge.name,
        name,
        len(calls),
        cached,
        reattached,
        len(new),
        usd,
        f"{the_judge.endpoint}: {describe()}"
        if callable(describe := getattr(the_judge, "describe_price", None))
        else the_judge.endpoint,
        missing,
        judge_kind=the_judge.kind,
    )


# -- reading ------------------------------------------------------------------------------------
def load_judgements(store: StoreLike = None, *, judge: str | None = None) -> pd.DataFrame:
    """Every judgement in ``store`` (default ``$KLING_LAB_STORE`` or ./kling_runs), oldest first."""
    df = dataset.judgements_frame(RunStore.coerce(store))
    if judge is not None:
        df = df[df["judge"] == judge].reset_index(drop=True)
    return df


# -- resuming -----------------------------------------------------------------------------------
def resolve_call(p: PendingRequest) -> JudgeCall | None:
    """The JudgeCall of a journaled judge request, rebuilt from the journal (None if it cannot be)."""
    spec = p.sweep.get("judge_spec")
    runs, clips = p.sweep.get("runs"), p.sweep.get("clips")
    if not isinstance(spec, dict) or not isinstance(runs, list) or not isinstance(clips, list):
        return None
    try:
        the_judge = get_judge(spec.get("factory", ""), **dict(spec.get("options") or {}))
        if not isinstance(the_judge, FalJudgeLike):
            return None
        return the_judge.call(runs, [Clip(**c) for c in clips])
    except (InvalidInput, TypeError, ValueError):
        return None


def pending_judge_calls(store: StoreLike = None, backend: str = "emulator") -> int:
    """How many judge calls of ``backend`` are journaled without their row (a resume collects them)."""
    return len(_pending_judge_calls(RunStore.coerce(store), backend))


def make_judge_runner(
    backend: str | Backend | None = "emulator", store: StoreLike = None, **options: Any
) -> JudgeRunner:
    """A runner of judge calls (the cap rules of :func:`kling_lab.runner.api.make_runner` apply)."""
    runner = make_runner(
        backend, store, factory=lambda b, s, o: JudgeRunner(b, s, o, resolve=resolve_call), media_hook=None, **options
    )
    assert isinstance(runner, JudgeRunner)
    return runner


async def resume_judging_async(runner: JudgeRunner) -> RunResult:
    """Collect every journaled judge call of the runner's backend that has no row yet (never sends again)."""
    try:
        return await runner.resume()
    finally:
        await runner.backend.aclose()


__all__ = [
    "JudgeEstimate",
    "JudgeResult",
    "describe_plan",
    "estimate_judge",
    "judge",
    "judge_async",
    "load_judgements",
    "make_judge_runner",
    "pending_judge_calls",
    "resolve_call",
    "resume_judging_async",
]
