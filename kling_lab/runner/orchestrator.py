"""The Runner: plan a sweep's jobs, run them with bounded concurrency, close the run.

Per request::

    cache hit? ──yes──► row (ok, cache_hit, $0)
        │no
    pending in journal? ──yes──► re-attach to its request_id (never submit again)
        │no
    claim it ─► the job's life (:mod:`~kling_lab.runner.job`): reserve, submit, follow, collect ─► row

Every request that was submitted ends in exactly one terminal row (ok / failed / cancelled);
an interrupted sweep cancels its in-flight requests at fal and logs them ``cancelled``.
Rows go through the row writer (:mod:`~kling_lab.runner.row_writer`); every job's state
changes go to the run's observers (:mod:`~kling_lab.runner.events`), the progress bar among them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kling_lab.backends.base import Backend
from kling_lab.models import ModelRequest, model_for_endpoint
from kling_lab.runner.budget import Budget
from kling_lab.runner.claims import Claims
from kling_lab.runner.context import RunContext
from kling_lab.runner.events import EventBus
from kling_lab.runner.job import Job
from kling_lab.runner.journal import Journal, PendingRequest
from kling_lab.runner.options import RunOptions, RunResult
from kling_lab.runner.plan import Plan
from kling_lab.runner.progress import ProgressBar
from kling_lab.runner.row_writer import RowWriter
from kling_lab.runner.rows import tags_json
from kling_lab.runner.uploads import Uploader
from kling_lab.store.run_store import RunStore
from kling_lab.store.uploads import UploadCache
from kling_lab.sweep import Sweep

log = logging.getLogger("kling_lab.runner")

RESULT_TTL_S = 3600  # fal keeps results about an hour

__all__ = ["RESULT_TTL_S", "RunOptions", "RunResult", "Runner"]  # RunOptions/RunResult live in runner.options


class Runner:
    """Runs sweeps (or resumes journaled requests) on one backend into one store.

    ``kind`` is what its journal entries say (``sweep.kind``; clip requests say nothing): a runner
    re-attaches and resumes only its own kind (judge calls: :mod:`kling_lab.runner.judging`)."""

    kind = "clip"

    def __init__(
        self,
        backend: Backend,
        store: RunStore | str | os.PathLike[str] | None = None,
        options: RunOptions | None = None,
    ) -> None:
        self.backend = backend
        self.store = RunStore.coerce(store).require_writable()
        self.options = options or RunOptions()
        self.journal = Journal(self.store.journal_dir)
        self.claims = Claims(self.store.journal_dir / "claims")
        self.budget = Budget(self.options.max_cost_usd)
        self.writer = RowWriter(self.store, self.journal, self.claims, append=self._append_rows)
        self.events = EventBus(self.options.observers, spent_usd=lambda: self.writer.spent_usd)
        self.ctx = RunContext(
            backend=backend,
            store=self.store,
            options=self.options,
            journal=self.journal,
            budget=self.budget,
            writer=self.writer,
            events=self.events,
            slots=asyncio.Semaphore(self.options.concurrency),
            downloads=asyncio.Semaphore(self.options.download_concurrency),
            uploads=Uploader(backend, UploadCache(self.store)),
        )
        self.last_result: RunResult | None = None

    @property
    def poll_interval_s(self) -> float:
        return self.ctx.poll_interval_s

    # -- entry points ----------------------------------------------------------------------
    async def run(self, sweep: Sweep, *, on_plan: Callable[[Plan], None] | None = None) -> RunResult:
        """Run every item of ``sweep``; reuse cached results and re-attach journaled ones.

        ``on_plan`` is called with the :class:`Plan` (cache hits, re-attached, to pay) after the
        backend's pre-flight, before the first submit."""
        jobs, sweep_id = self._prepare(sweep)
        await self._preflight(jobs)
        if on_plan is not None:
            on_plan(self._plan(sweep_id, jobs))
        return await self._execute(jobs, sweep_id)

    def plan(self, sweep: Sweep) -> Plan:
        """What :meth:`run` would do now, without doing it (reads the store and the journal)."""
        jobs, sweep_id = self._prepare(sweep)
        return self._plan(sweep_id, jobs)

    def _prepare(self, sweep: Sweep) -> tuple[list[Job], str]:
        """One job per request: re-attached (journaled), a cache hit (``cache_source``) or new."""
        sweep.require_prices()  # a budget cannot hold a request of unknown price
        pending: dict[tuple[str, str, str], list[PendingRequest]] = {}
        for p in self._open_pending():
            if p.owner_alive:  # a live runner is collecting it (and holds its claim: we wait for it)
                continue
            pending.setdefault((p.backend, p.endpoint, p.fingerprint), []).append(p)
        cached = (
            {} if self.options.force else self._cached_ok({i.fingerprint: i.request.endpoint_id for i in sweep.items})
        )
        params_json = tags_json(sweep.tags, self.options.tags)
        sweep_id = sweep.sweep_id  # hashes every item's fingerprint: once per run, not once per item
        jobs: list[Job] = []
        for item in sweep.items:
            meta = {
                "sweep_id": sweep_id,
                "experiment": sweep.name,
                "sweep_index": item.index,
                "notebook": self.options.notebook,
                "params_json": params_json,
            }
            job = Job(self.ctx, item.request, item.fingerprint, item.repeat, meta)
            journaled = pending.pop((self.backend.name, item.request.endpoint_id, item.fingerprint), [])
            if journaled:
                # Already submitted by an earlier process: re-attach, never submit again. A lost
                # submit response can leave several paid ids for one fingerprint: collect them all.
                job.reattach = journaled[0]
                jobs.append(job)
                jobs.extend(job.twin(extra) for extra in journaled[1:])
            else:
                job.cache_source = cached.get(item.fingerprint)
                jobs.append(job)
        return jobs, sweep_id

    @staticmethod
    def _plan(sweep_id: str, jobs: list[Job]) -> Plan:
        new = [job for job in jobs if job.reattach is None and job.cache_source is None]
        by_duration: dict[str, int] = {}
        for job in new:
            seconds = str(job.request.duration_s)
            by_duration[seconds] = by_duration.get(seconds, 0) + 1
        return Plan(
            sweep_id=sweep_id,
            total=len(jobs),
            cached=sum(1 for job in jobs if job.reattach is None and job.cache_source is not None),
            reattached=sum(1 for job in jobs if job.reattach is not None),
            to_submit=len(new),
            to_pay_usd=float(sum(Decimal(str(job.price)) for job in new)),
            by_duration=by_duration,
        )

    async def _preflight(self, jobs: list[Job]) -> None:
        """Before the first call to the backend: can it be reached? (BackendConfigError if not.)"""
        check = getattr(self.backend, "preflight", None)
        if check is not None and any(job.cache_source is None for job in jobs):
            await check()

    async def resume(self) -> RunResult:
        """Re-attach every journaled request of this backend that has no terminal row yet."""
        jobs: list[Job] = []
        for p in self._open_pending():
            if p.owner_alive:
                log.warning("request %s is being collected by running process %s; skipped", p.request_id, p.owner_pid)
                continue
            request = _journaled_request(p)
            if request is None:
                log.warning(
                    "request %s is for %s, which no registered model serves; left in the journal",
                    p.request_id,
                    p.endpoint,
                )
                continue
            jobs.append(Job(self.ctx, request, p.fingerprint, int(p.sweep.get("repeat", 0)), dict(p.sweep), reattach=p))
        await self._preflight(jobs)
        return await self._execute(jobs, None)

    # -- what the store and the journal already know ---------------------------------------
    def _open_pending(self) -> list[PendingRequest]:
        """Journaled requests of this backend still waiting for a row.

        A request whose row reached the log just before a crash (but not its ``done``
        event) is marked done here instead of being collected twice."""
        mine = [
            p
            for p in self.journal.pending().values()
            if p.backend == self.backend.name and p.sweep.get("kind", "clip") == self.kind
        ]
        if not mine:
            return []
        logged = self._logged([p.request_id for p in mine])
        still = []
        for p in mine:
            if p.request_id in logged:
                self.journal.done(request_id=p.request_id, run_id="", status="logged")
            else:
                still.append(p)
        return still

    def _append_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write a batch of terminal rows (the run log; a judge runner writes judgements)."""
        self.store.append(rows)

    def _logged(self, request_ids: Sequence[str]) -> set[str]:
        """Which of these request ids already have their row (cache hits aside)."""
        return {r["request_id"] for r in self.store.rows_where("request_id", request_ids) if not r.get("cache_hit")}

    def _cached_ok(self, endpoints: dict[str, str]) -> dict[str, dict[str, Any]]:
        """fingerprint → the latest ok row of this backend (and endpoint) whose video is still in the store."""
        found: dict[str, dict[str, Any]] = {}
        candidates = [
            r
            for r in self.store.rows_where("fingerprint", endpoints)
            if r["status"] == "ok"
            and r["backend"] == self.backend.name
            and r["endpoint"] == endpoints[r["fingerprint"]]
        ]
        # Remote: one listing instead of a request per video; local: a stat per candidate.
        remote_videos = self.store.video_keys() if candidates and self.store.is_remote else None
        for row in sorted(candidates, key=lambda r: r["logged_at"] or datetime.min.replace(tzinfo=UTC)):
            rel = row.get("video_path")
            if (rel in remote_videos) if remote_videos is not None else self.store.has_video(rel):
                found[row["fingerprint"]] = row  # the newest ok row wins
        return found

    # -- the run ---------------------------------------------------------------------------
    async def _execute(self, jobs: list[Job], sweep_id: str | None) -> RunResult:
        bar = None
        if self.options.progress:
            bar = ProgressBar(len(jobs), sweep_id or "resume", emulated=self.backend.name == "emulator")
            self.events.observers.append(bar)
        old = [j.reattach for j in jobs if j.reattach and j.reattach.age_s > RESULT_TTL_S]
        if old:
            log.warning("%d journaled requests are older than an hour; fal may have dropped their results", len(old))
        for job in jobs:
            job.emit("planned")
        self.writer.start()
        for job in jobs:
            if job.cache_source is not None:
                job.log_cache_hit(job.cache_source)
        tasks = [asyncio.ensure_future(self._one(job)) for job in jobs if job.cache_source is None]
        interrupted = False
        try:
            if tasks:
                await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            interrupted = True  # gather has cancelled every job; wait for their cleanup
            if tasks:
                await asyncio.wait(tasks)
            raise
        finally:
            self.writer.close()  # before the journal closes: each row, then its ``done`` event
            self.claims.release_all()
            if bar is not None:
                bar.close()
                self.events.observers.remove(bar)
            await self.ctx.close_http()
            self.journal.close()
            self._tidy()
            result = RunResult(
                sweep_id,
                self.writer.rows,
                self.store,
                self.ctx.submitted,
                self.ctx.pending_left,
                interrupted,
                self.backend.name,
            )
            self.last_result = result
            log.info("%s", result.summary())
        return result

    def _tidy(self) -> None:
        if self.store.is_remote:  # fold this run's journal into the shared store (audit of every id)
            import socket

            for path in self.journal.files():
                self.store.files.put_file(path, f"journal/{socket.gethostname()}-{path.name}")
        self.journal.prune()
        if len(self.store.part_files()) > 64:
            self.store.compact()

    async def _one(self, job: Job) -> None:
        """Claim the job, live its life, free the claim if no row was queued; end it in any case."""
        stopped: BaseException | None = None
        try:
            if (job.reattach is not None or not self.options.force) and not await self._claim(job):
                return
            try:
                await job.run()
            finally:
                if "status" not in job.row:  # no row queued (left pending): free the claim now;
                    self.claims.release(job.claim_key)  # otherwise once the row is in the log
        except BaseException as exc:
            stopped = exc
            raise
        finally:
            job.end_without_row(stopped)  # a no-op for every job that ended with its row

    async def _claim(self, job: Job) -> bool:
        """Claim the right to submit ``job`` (see :mod:`kling_lab.runner.claims`).

        While another process (or an identical item of this sweep) holds it, wait; then look
        again: its result is a cache hit, or its journaled request is re-attached. Returns
        False when the job ended without a request of its own."""
        key = job.claim_key
        waited = False
        while not self.claims.try_acquire(key):
            waited = True
            await asyncio.sleep(self.poll_interval_s)
        if waited and job.reattach is not None:
            if not any(p.request_id == job.reattach.request_id for p in self._open_pending()):
                self.claims.release(key)  # another runner collected it meanwhile
                job.collected_elsewhere()
                return False
        elif waited:
            hit = self._cached_ok({job.fingerprint: job.endpoint}).get(job.fingerprint)
            if hit is not None:
                self.claims.release(key)
                job.log_cache_hit(hit)
                return False
            journaled = [p for p in self._open_pending() if p.fingerprint == job.fingerprint]
            if journaled:
                job.reattach = journaled[0]
        return True


def _journaled_request(p: PendingRequest) -> ModelRequest | None:
    """The request a journal entry was submitted with (its arguments as sent; None for an unknown endpoint)."""
    model = model_for_endpoint(p.endpoint)
    endpoint = model.endpoint_by_id(p.endpoint) if model is not None else None
    if model is None or endpoint is None:
        return None
    return ModelRequest(model, endpoint, endpoint.schema.model_validate(p.input))
