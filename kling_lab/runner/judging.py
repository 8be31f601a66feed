"""Judge calls through the runner: the life of a clip request, with a different collect step.

A judge call asks a fal vision-language endpoint about one clip (or two, pairwise). It goes through
everything a clip request does — the price reserved against the cap, the claim, the journal (its
entries say ``kind: judge``), submit and polls with the one retry policy, cancel on interrupt or
timeout, re-attach by request id after a crash — and ends in one row of the ``judgements`` dataset
(:mod:`kling_lab.store.judgements`) instead of a video download::

    reserve ─► clips to fal storage (or fal's own result URL, while it answers) ─► submit ─► journal ─► poll
        ─► result ─► the judge's parser ─► ok row
                          └─ invalid ─► asked once more: a second paid call, journaled as the retry
                                          (the first is marked done only once the retry is journaled)
                                        ─► ok row, or failed ``invalid_output`` with every raw answer kept

What to ask and how to read the answer come from the judge (:mod:`kling_lab.judges`, a higher layer)
as a :class:`~kling_lab.runner.judge_call.JudgeCall`; the runner only carries it. A call whose fingerprint (judge + rubric hash +
the clips' sha256) has an ok judgement on this backend is a cache hit: no call, no row, $0.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast
from urllib.parse import urlparse

import httpx

from kling_lab.backends.base import Backend
from kling_lab.errors import BackendError
from kling_lab.models.judging import output_text
from kling_lab.runner.job import Job, LeftPending
from kling_lab.runner.journal import PendingRequest
from kling_lab.runner.judge_call import KIND, InvalidOutput, JudgeCall, Parsed
from kling_lab.runner.options import RunOptions, RunResult
from kling_lab.runner.orchestrator import Runner
from kling_lab.runner.plan import Plan
from kling_lab.runner.retry import retry
from kling_lab.store import judgements
from kling_lab.store.run_store import RunStore
from kling_lab.util.clock import utcnow
from kling_lab.util.text import canonical_json

log = logging.getLogger("kling_lab.runner")

GONE_STATUS = (404, 410)
HEAD_TIMEOUT_S = 10.0


@dataclass(eq=False)
class JudgeJob(Job):
    """A :class:`~kling_lab.runner.job.Job` whose collect step reads a judge's answer (see the module doc)."""

    tries: int = 1
    earlier_cost: float = 0.0  # what the first call cost, once it was asked again
    earlier_raw: list[str] = field(default_factory=list)
    earlier_request_id: str | None = None  # the first call: marked done once the retry is journaled

    def __post_init__(self) -> None:
        self.row = self.call.base_row(self.ctx.backend.name)

    @property
    def call(self) -> JudgeCall:
        return cast(JudgeCall, self.request)

    @property
    def claim_key(self) -> str:
        return self.ctx.claim_key(self.call.fingerprint)  # the retry shares its first call's claim

    def twin(self, reattach: PendingRequest) -> JudgeJob:
        return JudgeJob(self.ctx, self.request, self.fingerprint, self.repeat, self.meta, reattach)

    def log_cache_hit(self, source: Mapping[str, Any]) -> None:
        """Judged before with this rubric: no call, no row."""
        self.emit("cache_hit", message=f"judged before ({source.get('judgement_id')}); not judged again")

    def as_retry(self, p: PendingRequest) -> JudgeJob:
        """Re-attach to a journaled second call (the first answer was invalid)."""
        self.request = cast(Any, self.call.again(str(p.sweep.get("retry_error") or "invalid answer")))
        self.fingerprint = p.fingerprint
        self.reattach = p
        self.tries = 2
        self.earlier_cost = float(p.sweep.get("first_cost_usd") or 0.0)
        self.earlier_raw = [str(p.sweep.get("first_raw_text") or "")]
        self.row["tries"] = 2
        return self

    # -- submit: clips by their live result URL when possible ------------------------------
    async def _submit(self) -> bool:
        await self._use_live_result_urls()
        submitted = await super()._submit()
        if submitted and self.earlier_request_id is not None:  # the retry is journaled: the first is done
            self.ctx.journal.done(request_id=self.earlier_request_id, run_id=self.row["run_id"], status="retried")
            self.earlier_request_id = None
        return submitted

    async def _use_live_result_urls(self) -> None:
        """A clip whose fal result URL still answers is sent by that URL (no upload). An emulator
        fetches only its own files: another emulator's URL (a kernel's own, say) is not used."""
        host = getattr(self.ctx.backend, "host", None)
        for i, clip in enumerate(self.call.clips):
            if i in self.call.reuse or not clip.result_url:
                continue
            if host is not None and urlparse(clip.result_url).netloc != host:
                continue
            try:
                response = await self.ctx.http().head(clip.result_url, timeout=HEAD_TIMEOUT_S)
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                self.call.reuse[i] = clip.result_url

    # -- collect: read the answer ----------------------------------------------------------
    async def _collect(self) -> None:
        ctx, request_id = self.ctx, self.request_id
        assert request_id is not None
        try:
            result = await retry(
                lambda: ctx.backend.result(self.endpoint, request_id), ctx.options.submit_policy, rng=ctx.rng
            )
        except BackendError as exc:
            if exc.status_code in GONE_STATUS:
                await self._fail("result_expired", f"fal no longer has this paid answer ({exc})", charged=True)
            elif exc.transient:
                raise LeftPending(
                    f"paid, but its answer could not be fetched yet ({exc}); a re-run fetches it"
                ) from exc
            else:
                await self._fail(exc.error_type or "result_error", str(exc))
            return
        cost = float(self.call.billed(result))
        text = output_text(result)
        try:
            if text is None:
                raise InvalidOutput(f"the result has no output text: {canonical_json(result)[:200]}")
            parsed = self.call.parse(text)
        except InvalidOutput as exc:
            await self._invalid(text if text is not None else canonical_json(result), cost, str(exc))
            return
        await self._judged(parsed, text, cost)

    async def _judged(self, parsed: Parsed, text: str, cost: float) -> None:
        row = {
            **self.row,
            "status": "ok",
            "scores_json": canonical_json(dict(parsed.scores)),
            "explanation": parsed.explanation,
            "preferred": parsed.preferred,
            "raw_text": _joined([*self.earlier_raw, text]),
            "tries": self.tries,
            "cost_usd": round(self.earlier_cost + cost, 6),
            "logged_at": utcnow(),
        }
        await self._finish(row, charged=cost)

    async def _invalid(self, text: str, cost: float, error: str) -> None:
        """Ask once more (a second paid call), or end ``failed`` with every raw answer kept."""
        ctx = self.ctx
        if self.tries >= 2 or not await self._reserve_again(cost):
            note = "asked twice" if self.tries >= 2 else "not asked again: the cap cannot hold another call"
            row = {
                **self.row,
                "status": "failed",
                "error_type": "invalid_output",
                "error": f"{error} ({note})"[:2000],
                "raw_text": _joined([*self.earlier_raw, text]),
                "tries": self.tries,
                "cost_usd": round(self.earlier_cost + cost, 6),
                "logged_at": utcnow(),
            }
            await self._finish(row, charged=cost)
            return
        log.info("judge %s: invalid answer (%s); asking once more", self.call.judge, error)
        first_id = self.request_id
        self.earlier_cost += cost
        self.earlier_raw.append(text)
        self.earlier_request_id = first_id
        self.tries = 2
        self.row["tries"] = 2
        self.request = cast(Any, self.call.again(error))
        self.fingerprint = self.call.retry_fingerprint
        self.meta = {
            **self.meta,
            "retry_of": first_id,
            "retry_error": error[:500],
            "first_cost_usd": cost,
            "first_raw_text": text[:4000],
        }
        self.request_id = None
        for key in ("request_id", "submitted_at", "started_at", "completed_at", "queue_s", "inference_s", "total_s"):
            self.row.pop(key, None)
        async with ctx.slots:
            if not await self._submit():
                return
            completed = await self._follow()
        if completed is not None:
            await self._collect()

    async def _reserve_again(self, first_cost: float) -> bool:
        """Book the first call's cost, then reserve the second's price (False: it does not fit)."""
        budget = self.ctx.budget
        await budget.settle(self.reserved, first_cost)
        self.reserved = 0.0
        if not await budget.reserve(self.price):
            return False
        self.reserved = self.price
        return True


def _joined(answers: Sequence[str]) -> str:
    return "\n\n--- asked again ---\n\n".join(answers)[:20000]


# -- the runner of judge calls ---------------------------------------------------------------
Resolve = Callable[[PendingRequest], JudgeCall | None]


class JudgeRunner(Runner):
    """Runs judge calls (or resumes journaled ones) on one backend into the store's ``judgements``."""

    kind = KIND

    def __init__(
        self,
        backend: Backend,
        store: RunStore | str | os.PathLike[str] | None = None,
        options: RunOptions | None = None,
        *,
        resolve: Resolve | None = None,
    ) -> None:
        super().__init__(backend, store, options)
        self.resolve = resolve  # a journaled judge call -> its JudgeCall (to resume without the judge at hand)

    # -- where rows go and what the store already knows -----------------------------------
    def _append_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        judgements.append_judgements(self.store, rows)

    def _logged(self, request_ids: Sequence[str]) -> set[str]:
        return {r["request_id"] for r in judgements.rows_where(self.store, "request_id", request_ids)}

    def _cached_ok(self, endpoints: dict[str, str]) -> dict[str, dict[str, Any]]:
        return judgements.cached_ok(self.store, endpoints, self.backend.name)

    # -- entry points ----------------------------------------------------------------------
    async def judge(
        self, calls: Sequence[JudgeCall], *, label: str = "judge", on_plan: Callable[[Plan], None] | None = None
    ) -> RunResult:
        """Make every call not judged before; re-attach journaled ones (never paid twice)."""
        jobs = self._judge_jobs(calls)
        await self._preflight(jobs)
        if on_plan is not None:
            on_plan(self._plan(label, jobs))
        return await self._execute(jobs, label)

    def plan_calls(self, calls: Sequence[JudgeCall], label: str = "judge") -> Plan:
        """What :meth:`judge` would do now, without doing it."""
        return self._plan(label, self._judge_jobs(calls))

    def _judge_jobs(self, calls: Sequence[JudgeCall]) -> list[Job]:
        pending: dict[tuple[str, str], list[PendingRequest]] = {}
        for p in self._open_pending():
            if not p.owner_alive:
                pending.setdefault((p.endpoint, p.fingerprint), []).append(p)
        cached = {} if self.options.force else self._cached_ok({c.fingerprint: c.endpoint_id for c in calls})
        jobs: list[Job] = []
        for call in calls:
            job = JudgeJob(self.ctx, cast(Any, call), call.fingerprint, 0, call.meta())
            retried = pending.pop((call.endpoint_id, call.retry_fingerprint), [])
            first = pending.pop((call.endpoint_id, call.fingerprint), [])
            if retried:
                for p in first:  # the retry was journaled, so the first call's answer is known invalid
                    self.journal.done(request_id=p.request_id, run_id="", status="retried")
                jobs.append(job.as_retry(retried[0]))
            elif first:
                job.reattach = first[0]
                jobs.append(job)
                jobs.extend(job.twin(extra) for extra in first[1:])
            else:
                job.cache_source = cached.get(call.fingerprint)
                jobs.append(job)
        return jobs

    @staticmethod
    def _plan(sweep_id: str, jobs: list[Job]) -> Plan:
        new = [job for job in jobs if job.reattach is None and job.cache_source is None]
        return Plan(
            sweep_id=sweep_id,
            total=len(jobs),
            cached=sum(1 for job in jobs if job.reattach is None and job.cache_source is not None),
            reattached=sum(1 for job in jobs if job.reattach is not None),
            to_submit=len(new),
            to_pay_usd=float(sum(Decimal(str(job.price)) for job in new)),
        )

    async def resume(self, request_ids: Sequence[str] = ()) -> RunResult:
        """Re-attach every journaled judge call of this backend that has no row yet (``request_ids``,
        the rescue tokens of clip runs, are not judge calls: refused)."""
        if request_ids:
            raise ValueError("request ids are collected by a clip runner's resume, not a judge runner's")
        jobs: list[Job] = []
        for p in self._open_pending():
            if p.owner_alive:
                continue
            call = self.resolve(p) if self.resolve is not None else None
            if call is None:
                log.warning("judge call %s: its judge cannot be rebuilt here; left in the journal", p.request_id)
                continue
            job = JudgeJob(self.ctx, cast(Any, call), call.fingerprint, 0, call.meta())
            if p.fingerprint == call.retry_fingerprint:
                job.as_retry(p)
            else:
                job.reattach = p
            jobs.append(job)
        await self._preflight(jobs)
        return await self._execute(jobs, None)


__all__ = ["JudgeJob", "JudgeRunner", "Resolve"]
