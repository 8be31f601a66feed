"""The Runner: plan a sweep's jobs, run them with bounded concurrency, close the run.

Per request::

    cache hit? ──yes──► row (ok, cache_hit, $0)
        │no
    refused by fal before? ──yes──► row (skipped_final, $0)  (unless retry_failed)
        │no
    pending in journal? ──yes──► re-attach to its request_id (never submit again)
        │no
    claim it ─► the job's life (:mod:`~kling_lab.runner.job`): reserve, submit, follow, collect ─► row

Every submitted request ends in exactly one terminal row (ok / failed / cancelled), or stays in
the journal for a resume when it is paid but cannot be collected now. An interrupted sweep
cancels its in-flight requests at fal and logs them ``cancelled``. Ambiguous submits (sent, never
answered) are looked up at fal before and after the run (:mod:`~kling_lab.runner.orphans`), and
their prices stay reserved until they are. If the journal cannot be written the run stops
submitting, cancels what is in flight, and ends with :class:`~kling_lab.errors.StoreWriteError`
naming every request it could not record (:mod:`~kling_lab.runner.rescue`).
Rows go through the row writer (:mod:`~kling_lab.runner.row_writer`); every job's state
changes go to the run's observers (:mod:`~kling_lab.runner.events`), the progress bar among them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from kling_lab.backends.base import Backend
from kling_lab.errors import StoreWriteError
from kling_lab.runner.budget import Budget
from kling_lab.runner.cap import budget_for_run
from kling_lab.runner.claim_wait import claim_or_wait
from kling_lab.runner.claims import RENEW_EVERY_S, Claims, RemoteLeases
from kling_lab.runner.context import RunContext
from kling_lab.runner.downloads import remove_stale_downloads
from kling_lab.runner.events import EventBus
from kling_lab.runner.intake import journaled_request, take_in
from kling_lab.runner.job import Job
from kling_lab.runner.journal import AmbiguousSubmit, Journal, JournalWriteError, PendingRequest
from kling_lab.runner.lookups import cached_ok, final_failures
from kling_lab.runner.options import RunOptions, RunResult
from kling_lab.runner.orphans import Orphans
from kling_lab.runner.plan import Plan
from kling_lab.runner.progress import ProgressBar
from kling_lab.runner.rescue import rescue_line
from kling_lab.runner.row_writer import RowWriter
from kling_lab.runner.rows import current_user, tags_json
from kling_lab.runner.uploads import Uploader
from kling_lab.store.conditional import ConditionalObjects
from kling_lab.store.run_store import RunStore
from kling_lab.store.uploads import UploadCache
from kling_lab.sweep import Sweep

log = logging.getLogger("kling_lab.runner")

RESULT_TTL_S = 3600  # fal keeps a result an hour after it completes (its video URL for days)

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
        objects = ConditionalObjects.for_store(self.store.files)
        self.claims = Claims(self.store.journal_dir / "claims", RemoteLeases(objects) if objects else None)
        self.budget = Budget(self.options.max_cost_usd)
        self.writer = RowWriter(self.store, self.journal, self.claims, append=self._append_rows)
        self.events = EventBus(self.options.observers, spent_usd=lambda: self.writer.spent_usd)
        self.orphans = Orphans(backend, self.journal, self.store)
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
            orphans=self.orphans,
            uploads=Uploader(backend, UploadCache(self.store)),
        )
        self.last_result: RunResult | None = None
        self._busy = 0  # jobs given up after waiting for another process's claim
        self._halted: JournalWriteError | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def poll_interval_s(self) -> float:
        return self.ctx.poll_interval_s

    # -- entry points ----------------------------------------------------------------------
    async def run(self, sweep: Sweep, *, on_plan: Callable[[Plan], None] | None = None) -> RunResult:
        """Run every item of ``sweep``; reuse cached results and re-attach journaled ones.

        ``on_plan`` is called with the :class:`Plan` (cache hits, re-attached, to pay) after the
        backend's pre-flight, before the first submit."""
        sweep.require_prices()  # a budget cannot hold a request of unknown price
        jobs, sweep_id = self._prepare(sweep)
        await self._preflight(jobs)
        if await self._settle_orphans():
            jobs, sweep_id = self._prepare(sweep)  # adopted orphans are re-attached like journaled requests
        self._set_budget(sweep_id)
        if on_plan is not None:
            on_plan(self._plan(sweep_id, jobs))
        return await self._execute(jobs, sweep_id)

    def plan(self, sweep: Sweep) -> Plan:
        """What :meth:`run` would do now, without doing it (reads the store and the journal)."""
        jobs, sweep_id = self._prepare(sweep)
        return self._plan(sweep_id, jobs)

    def _prepare(self, sweep: Sweep) -> tuple[list[Job], str]:
        """One job per request: re-attached (journaled), a cache hit, a final refusal, or new."""
        pending: dict[tuple[str, str, str], list[PendingRequest]] = {}
        for p in self._open_pending():
            if p.owner_alive:  # a live runner is collecting it (and holds its claim: we wait for it)
                continue
            pending.setdefault((p.backend, p.endpoint, p.fingerprint), []).append(p)
        endpoints = {i.fingerprint: i.request.endpoint_id for i in sweep.items}
        cached = {} if self.options.force else self._cached_ok(endpoints)
        finals = {} if self.options.retry_failed else self._final_failures(endpoints)
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
                if job.cache_source is None:
                    job.final_source = finals.get(item.fingerprint)
                jobs.append(job)
        return jobs, sweep_id

    @staticmethod
    def _plan(sweep_id: str, jobs: list[Job]) -> Plan:
        new = [job for job in jobs if job.reattach is None and job.cache_source is None and job.final_source is None]
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
            refused=sum(1 for job in jobs if job.final_source is not None and job.cache_source is None),
        )

    async def _preflight(self, jobs: list[Job]) -> None:
        """Before the first call to the backend: can it be reached? (BackendConfigError if not.)"""
        check = getattr(self.backend, "preflight", None)
        if check is not None and any(job.cache_source is None and job.final_source is None for job in jobs):
            await check()

    async def resume(self, request_ids: Sequence[str] = ()) -> RunResult:
        """Re-attach every journaled request of this backend that has no terminal row yet.

        ``request_ids``: ids (or the rescue tokens a run printed when its journal could not be
        written) to journal first; a bare id unknown to the journal is looked up at fal."""
        if request_ids:
            await take_in(self.journal, self.backend.name, self.orphans.platform, request_ids)
        await self._settle_orphans()
        jobs: list[Job] = []
        for p in self._open_pending():
            if p.owner_alive:
                log.warning(
                    "request %s is being collected by a running process (pid %s); skipped", p.request_id, p.owner_pid
                )
                continue
            request = journaled_request(p)
            if request is None:
                log.warning(
                    "request %s is for %s, which no registered model serves; left in the journal",
                    p.request_id,
                    p.endpoint,
                )
                continue
            jobs.append(Job(self.ctx, request, p.fingerprint, int(p.sweep.get("repeat", 0)), dict(p.sweep), reattach=p))
        await self._preflight(jobs)
        self._set_budget(None)
        return await self._execute(jobs, None)

    # -- money: the cap across runs, the store's budget, ambiguous submits -----------------------
    def _set_budget(self, sweep_id: str | None) -> None:
        """The run's budget: earlier spend of the sweep and its ambiguous submits count against the cap."""
        open_ambiguous = [a for a in self._ambiguous() if not a.owner_alive]
        self.budget = budget_for_run(
            self.store, self.backend.name, self.options.max_cost_usd, sweep_id, open_ambiguous, current_user()
        )
        self.ctx.budget = self.budget
        store_budget = self.budget.store_budget
        self.writer.on_logged = store_budget.logged if store_budget is not None else None

    def _ambiguous(self) -> list[AmbiguousSubmit]:
        return [a for a in self.journal.ambiguous() if a.backend == self.backend.name]

    async def _settle_orphans(self, only: Iterable[str] | None = None) -> list[tuple[AmbiguousSubmit, PendingRequest]]:
        """Look up open ambiguous submits at fal and adopt the orphans it lists (journaled).

        ``only``: these ambiguous ids (this run's own); otherwise those of dead processes."""
        wanted = set(only) if only is not None else None
        entries = [
            a for a in self._ambiguous() if (a.ambiguous_id in wanted if wanted is not None else not a.owner_alive)
        ]
        if not entries:
            return []
        return await self.orphans.settle(entries)

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
        return cached_ok(self.store, self.backend.name, endpoints)

    def _final_failures(self, endpoints: dict[str, str]) -> dict[str, dict[str, Any]]:
        """fingerprint → its latest row, when that is a refusal fal gave for the input (see runner.outcomes)."""
        return final_failures(self.store, self.backend.name, endpoints)

    # -- the run ---------------------------------------------------------------------------
    async def _execute(self, jobs: list[Job], sweep_id: str | None) -> RunResult:
        bar = None
        if self.options.progress:
            bar = ProgressBar(len(jobs), sweep_id or "resume", emulated=self.backend.name == "emulator")
            self.events.observers.append(bar)
        old = [j.reattach for j in jobs if j.reattach and j.reattach.age_s > RESULT_TTL_S and not j.reattach.video_url]
        if old:
            log.warning("%d journaled requests are older than an hour; fal may have dropped their results", len(old))
        for job in jobs:
            job.emit("planned")
        self.writer.start()
        keepalive = asyncio.ensure_future(self._keep_alive())
        for job in jobs:
            if job.cache_source is not None:
                job.log_cache_hit(job.cache_source)
            elif job.final_source is not None:
                job.log_final_skip(job.final_source)
        interrupted = False
        store_error: BaseException | None = None
        try:
            await self._run_jobs([job for job in jobs if job.cache_source is None and job.final_source is None])
            if self._halted is None:
                await self._run_jobs(await self._adopt_after_run(jobs))
        except asyncio.CancelledError:
            interrupted = True
            raise
        finally:
            keepalive.cancel()
            try:
                await self.writer.aclose()  # before the journal closes: each row, then its ``done`` event
            except (OSError, JournalWriteError) as exc:
                store_error = exc
            self.claims.release_all()
            if bar is not None:
                bar.close()
                self.events.observers.remove(bar)
            await self.ctx.close_http()
            if self.budget.store_budget is not None and store_error is None:
                await asyncio.to_thread(self.budget.store_budget.close)
            unwritten = list(self.journal.unwritten)
            self.journal.close()
            if store_error is None and self._halted is None:
                self._tidy()
            result = self._result(sweep_id, interrupted)
            self.last_result = result
            log.info("%s", result.summary())
            if (self._halted is not None or store_error is not None) and not interrupted:
                raise StoreWriteError(self._store_error_line(unwritten, store_error)) from (self._halted or store_error)
        return result

    def _result(self, sweep_id: str | None, interrupted: bool) -> RunResult:
        return RunResult(
            sweep_id,
            self.writer.rows,
            self.store,
            self.ctx.submitted,
            self.ctx.pending_left,
            interrupted,
            self.backend.name,
            busy=self._busy,
            held=len(self.ctx.held),
            held_usd=float(sum(Decimal(str(v)) for v in self.ctx.held.values())),
            platform_denied=self.orphans.denied,
        )

    def _store_error_line(self, unwritten: list[dict[str, Any]], store_error: BaseException | None) -> str:
        reason = str(self._halted or store_error or "")
        reason = reason.split("(", 1)[-1].rstrip(")") if "(" in reason else reason
        line = rescue_line(unwritten, self.store.location, reason or "I/O error")
        if self.writer.unwritten_count:
            line += f"; {self.writer.unwritten_count} rows could not be written to the run log (a resume logs them)"
        return line

    async def _run_jobs(self, jobs: list[Job]) -> None:
        """Run ``jobs`` concurrently to their ends; on an interrupt, wait for their cleanup."""
        tasks = [asyncio.create_task(self._one(job)) for job in jobs]
        if not tasks:
            return
        self._tasks = tasks
        try:
            await asyncio.gather(*tasks, return_exceptions=self._halted is None)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)  # gather has cancelled every job; wait for their cleanup
            raise
        finally:
            self._tasks = []
        for task in tasks:
            exc = task.exception() if task.done() and not task.cancelled() else None
            if exc is not None and not isinstance(exc, JournalWriteError):
                raise exc

    async def _adopt_after_run(self, jobs: list[Job]) -> list[Job]:
        """This run's unanswered submits: one more look at fal now that their jobs had time to end."""
        held = list(self.ctx.held)
        if not held:
            return []
        by_fingerprint = {job.fingerprint: job for job in jobs}
        extra = []
        for entry, pending in await self._settle_orphans(held):
            await self.budget.settle(self.ctx.release_hold(entry.ambiguous_id), 0.0)  # the twin reserves it anew
            base = by_fingerprint.get(pending.fingerprint)
            if base is not None:
                extra.append(base.twin(pending))
        for job in extra:
            job.emit("planned")
        return extra

    async def _keep_alive(self) -> None:
        """Renew cross-machine claims and the store-budget ledger while the run lives."""
        while True:
            await asyncio.sleep(RENEW_EVERY_S)
            try:
                await asyncio.to_thread(self.claims.heartbeat)
                if self.budget.store_budget is not None:
                    await asyncio.to_thread(self.budget.store_budget.heartbeat)
            except Exception as exc:  # noqa: BLE001 - a missed renewal is retried next time
                log.warning("could not renew claims in the store: %s", exc)

    def _halt(self, exc: JournalWriteError) -> None:
        """The journal cannot be written: submit nothing more, cancel what is in flight."""
        if self._halted is not None:
            return
        self._halted = exc
        log.debug("%s: stopping; in-flight requests are cancelled at fal", exc)
        for task in self._tasks:
            task.cancel()

    def _tidy(self) -> None:
        if self.store.is_remote:  # fold this run's journal into the shared store (audit of every id)
            import socket

            for path in self.journal.files():
                self.store.files.put_file(path, f"journal/{socket.gethostname()}-{path.name}")
        self.journal.prune()
        self._tidy_downloads()
        if len(self.store.part_files()) > 64:
            self.store.compact()

    def _tidy_downloads(self) -> None:
        """Remove request-named downloads in tmp/ whose request no longer waits for them."""
        remove_stale_downloads(self.store, set(self.journal.pending()))

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
        except JournalWriteError as exc:
            stopped = exc
            self._halt(exc)
            if job.request_id is not None and "status" not in job.row:
                try:
                    await job.stop_after_halt()
                except JournalWriteError:
                    pass
            raise
        except BaseException as exc:
            stopped = exc
            raise
        finally:
            job.end_without_row(stopped)  # a no-op for every job that ended with its row

    async def _claim(self, job: Job) -> bool:
        """Claim the right to submit ``job``, waiting while another runner holds it
        (:mod:`kling_lab.runner.claim_wait`); False when the job ended without a request of its own."""
        outcome = await claim_or_wait(
            job,
            self.claims,
            timeout_s=self.options.claim_timeout_s,
            poll_s=self.poll_interval_s,
            open_pending=self._open_pending,
            cached_ok=self._cached_ok,
        )
        if outcome == "busy":
            self._busy += 1
        return outcome == "claimed"
