"""Run a sweep: cache, budget, bounded concurrency, journal, retries, download, one log row each.

Per request::

    cache hit? ──yes──► row (ok, cache_hit, $0)
        │no
    pending in journal? ──yes──► re-attach to its request_id (never submit again)
        │no
    reserve price (or skipped_budget) ─► submit ─► journal ─► poll ─► result ─► download ─► row

Every request that was submitted ends in exactly one terminal row (ok / failed / cancelled);
an interrupted sweep cancels its in-flight requests at fal and logs them ``cancelled``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from kling_lab.backends.base import Backend, Completed, InProgress, Queued
from kling_lab.errors import BackendError, DownloadError
from kling_lab.media.download import MAX_VIDEO_BYTES, download
from kling_lab.request import KlingRequest
from kling_lab.runner.budget import Budget
from kling_lab.runner.claims import Claims
from kling_lab.runner.journal import Journal, PendingRequest
from kling_lab.runner.retry import Backoff
from kling_lab.runner.rows import base_row, cache_hit_row, tags_json
from kling_lab.store.run_store import RunStore
from kling_lab.sweep import Sweep
from kling_lab.util.clock import utcnow

log = logging.getLogger("kling_lab.runner")

RESULT_TTL_S = 3600  # fal keeps results about an hour
ROW_FLUSH_INTERVAL_S = 0.5  # terminal rows reach the run log within this, many per part file


@dataclass
class RunOptions:
    """Knobs of one run (see :func:`kling_lab.run`)."""

    concurrency: int = 4
    max_cost_usd: float | None = None
    force: bool = False
    request_timeout_s: float | None = None
    poll_interval_s: float | None = None  # None: the backend's own
    max_submit_attempts: int = 6
    max_poll_errors: int = 30
    download_attempts: int = 3
    download_concurrency: int = 4
    max_video_bytes: int = MAX_VIDEO_BYTES
    backoff: Backoff = field(default_factory=Backoff)
    progress: bool = True
    tags: Mapping[str, Any] | None = None
    notebook: str | None = None
    media_hook: Callable[[str], dict[str, Any]] | None = None  # path → probe/qc columns

    def __post_init__(self) -> None:
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise ValueError(f"concurrency must be a positive integer; got {self.concurrency!r}")
        if self.max_cost_usd is not None and not self.max_cost_usd >= 0:
            raise ValueError(f"max_cost_usd must be >= 0; got {self.max_cost_usd!r}")


@dataclass
class RunResult:
    """What a run did: its rows and the counts a user asks about first."""

    sweep_id: str | None
    rows: list[dict[str, Any]]
    store: RunStore
    submitted: int = 0
    pending: int = 0
    interrupted: bool = False
    backend: str = ""

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status and not r.get("cache_hit"))

    @property
    def cache_hits(self) -> int:
        return sum(1 for r in self.rows if r.get("cache_hit"))

    @property
    def spent_usd(self) -> float:
        return round(sum(r.get("cost_usd") or 0.0 for r in self.rows), 2)

    def frame(self):
        """This run's rows as a typed DataFrame (like :func:`kling_lab.load_runs`)."""
        from kling_lab.store.run_store import rows_frame

        return rows_frame(self.rows, self.store)

    def summary(self) -> str:
        parts = [f"{self.count('ok')} ok", f"{self.count('failed')} failed"]
        if self.cache_hits:
            parts.append(f"{self.cache_hits} from cache ($0)")
        if self.count("cancelled"):
            parts.append(f"{self.count('cancelled')} cancelled")
        if self.count("skipped_budget"):
            parts.append(f"{self.count('skipped_budget')} skipped: budget cap reached")
        if self.pending:
            parts.append(f"{self.pending} still pending at fal: run `kling-lab resume` to collect them")
        head = "interrupted: " if self.interrupted else ""
        if self.backend == "emulator":
            money = f"${self.spent_usd:.2f} at fal prices (emulator: nothing was spent)"
        else:
            money = f"spent ${self.spent_usd:.2f}"
        return f"{head}{', '.join(parts)}; {self.submitted} submitted; {money}; store {self.store.location}"

    __str__ = summary

    def _repr_html_(self) -> str:
        from html import escape

        return f"<pre>{escape(self.summary())}</pre>"


async def _uninterruptible(coro: Any) -> None:
    """Run cleanup to the end even if cancelled again meanwhile (it protects money)."""
    task = asyncio.ensure_future(coro)
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            continue


class _LeftPending(Exception):
    """Lost contact with fal for too long: the request stays in the journal for a later resume."""


@dataclass
class _Job:
    """One request on its way to its row."""

    request: KlingRequest
    fingerprint: str
    repeat: int
    meta: dict[str, Any]
    reattach: PendingRequest | None = None
    request_id: str | None = None
    reserved: float = 0.0
    row: dict[str, Any] = field(default_factory=dict)


class Runner:
    """Runs sweeps (or resumes journaled requests) on one backend into one store."""

    def __init__(
        self,
        backend: Backend,
        store: RunStore | str | os.PathLike[str] | None = None,
        options: RunOptions | None = None,
    ) -> None:
        self.backend = backend
        self.store = RunStore.coerce(store)
        self.options = options or RunOptions()
        self.journal = Journal(self.store.journal_dir)
        self.claims = Claims(self.store.journal_dir / "claims")
        self.budget = Budget(self.options.max_cost_usd)
        self._rng = random.Random()
        self._rows: list[dict[str, Any]] = []
        self._unwritten: list[tuple[dict[str, Any], _Job | None]] = []  # rows not yet in the log
        self._submitted = 0
        self._pending_left = 0
        self._bar: Any = None
        self._slots = asyncio.Semaphore(self.options.concurrency)
        self._downloads = asyncio.Semaphore(self.options.download_concurrency)
        self._http: httpx.AsyncClient | None = None
        self.last_result: RunResult | None = None

    @property
    def poll_interval_s(self) -> float:
        return self.options.poll_interval_s or getattr(self.backend, "poll_interval_s", 2.0)

    # -- entry points ----------------------------------------------------------------------
    async def run(self, sweep: Sweep) -> RunResult:
        """Run every item of ``sweep``; reuse cached results and re-attach journaled ones."""
        pending: dict[tuple[str, str, str], list[PendingRequest]] = {}
        for p in self._open_pending():
            if p.owner_alive:  # a live runner is collecting it (and holds its claim: we wait for it)
                continue
            pending.setdefault((p.backend, p.endpoint, p.fingerprint), []).append(p)
        cached = {} if self.options.force else self._cached_ok({i.fingerprint for i in sweep.items})
        params_json = tags_json(sweep.tags, self.options.tags)
        sweep_id = sweep.sweep_id  # hashes every item's fingerprint: once per run, not once per item
        jobs, hits = [], []
        for item in sweep.items:
            meta = {
                "sweep_id": sweep_id,
                "experiment": sweep.name,
                "sweep_index": item.index,
                "notebook": self.options.notebook,
                "params_json": params_json,
            }
            job = self._job(item.request, item.fingerprint, item.repeat, meta)
            journaled = pending.pop((self.backend.name, self.backend.endpoint, item.fingerprint), [])
            if journaled:
                # Already submitted by an earlier process: re-attach, never submit again. A lost
                # submit response can leave several paid ids for one fingerprint: collect them all.
                job.reattach = journaled[0]
                jobs.append(job)
                for extra in journaled[1:]:
                    twin = self._job(item.request, item.fingerprint, item.repeat, meta)
                    twin.reattach = extra
                    jobs.append(twin)
            elif item.fingerprint in cached:
                hits.append(cache_hit_row(job.row, cached[item.fingerprint]))
            else:
                jobs.append(job)
        return await self._execute(jobs, hits, sweep_id, total=len(jobs) + len(hits))

    async def resume(self) -> RunResult:
        """Re-attach every journaled request of this backend that has no terminal row yet."""
        jobs = []
        for p in self._open_pending():
            if p.owner_alive:
                log.warning("request %s is being collected by running process %s; skipped", p.request_id, p.owner_pid)
                continue
            request = KlingRequest.parse(p.input)
            job = self._job(request, p.fingerprint, int(p.sweep.get("repeat", 0)), dict(p.sweep))
            job.reattach = p
            jobs.append(job)
        return await self._execute(jobs, [], None, total=len(jobs))

    # -- orchestration ---------------------------------------------------------------------
    def _job(self, request: KlingRequest, fingerprint: str, repeat: int, meta: dict[str, Any]) -> _Job:
        row = base_row(
            request=request,
            fingerprint=fingerprint,
            repeat=repeat,
            sweep_meta=meta,
            backend=self.backend.name,
            endpoint=self.backend.endpoint,
        )
        return _Job(request, fingerprint, repeat, meta, row=row)

    def _open_pending(self) -> list[PendingRequest]:
        """Journaled requests of this backend still waiting for a row.

        A request whose row reached the log just before a crash (but not its ``done``
        event) is marked done here instead of being collected twice."""
        mine = [
            p
            for p in self.journal.pending().values()
            if p.backend == self.backend.name and p.endpoint == self.backend.endpoint
        ]
        if not mine:
            return []
        logged = {
            r["request_id"]
            for r in self.store.rows_where("request_id", [p.request_id for p in mine])
            if not r.get("cache_hit")
        }
        still = []
        for p in mine:
            if p.request_id in logged:
                self.journal.done(request_id=p.request_id, run_id="", status="logged")
            else:
                still.append(p)
        return still

    def _cached_ok(self, fingerprints: set[str]) -> dict[str, dict[str, Any]]:
        """fingerprint → the latest ok row of this backend whose video is still in the store."""
        found: dict[str, dict[str, Any]] = {}
        candidates = [
            r
            for r in self.store.rows_where("fingerprint", fingerprints)
            if r["status"] == "ok" and r["backend"] == self.backend.name and r["endpoint"] == self.backend.endpoint
        ]
        # Remote: one listing instead of a request per video; local: a stat per candidate.
        remote_videos = self.store.video_keys() if candidates and self.store.is_remote else None
        for row in sorted(candidates, key=lambda r: r["logged_at"] or datetime.min.replace(tzinfo=UTC)):
            rel = row.get("video_path")
            if (rel in remote_videos) if remote_videos is not None else self.store.has_video(rel):
                found[row["fingerprint"]] = row  # the newest ok row wins
        return found

    async def _execute(
        self, jobs: list[_Job], hits: list[dict[str, Any]], sweep_id: str | None, total: int
    ) -> RunResult:
        self._open_progress(total, sweep_id)
        old = [j.reattach for j in jobs if j.reattach and j.reattach.age_s > RESULT_TTL_S]
        if old:
            log.warning("%d journaled requests are older than an hour; fal may have dropped their results", len(old))
        flusher = asyncio.ensure_future(self._flush_periodically())
        for row in hits:
            await self._finish(row, None)
        tasks = [asyncio.ensure_future(self._one(job)) for job in jobs]
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
            flusher.cancel()
            self._flush_rows()  # before the journal closes: each row, then its ``done`` event
            self.claims.release_all()
            self._close_progress()
            await self._close_http()
            self.journal.close()
            self._tidy()
            result = RunResult(
                sweep_id, self._rows, self.store, self._submitted, self._pending_left, interrupted, self.backend.name
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

    def _claim_key(self, job: _Job) -> str:
        return f"{self.backend.name}-{job.fingerprint}"

    async def _claim(self, job: _Job) -> bool:
        """Claim the right to submit ``job`` (see :mod:`kling_lab.claims`).

        While another process (or an identical item of this sweep) holds it, wait; then look
        again: its result is a cache hit, or its journaled request is re-attached. Returns
        False when the job ended as a cache hit."""
        key = self._claim_key(job)
        waited = False
        while not self.claims.try_acquire(key):
            waited = True
            await asyncio.sleep(self.poll_interval_s)
        if waited and job.reattach is not None:
            if not any(p.request_id == job.reattach.request_id for p in self._open_pending()):
                self.claims.release(key)  # another runner collected it meanwhile
                self._tick()
                return False
        elif waited:
            hit = self._cached_ok({job.fingerprint}).get(job.fingerprint)
            if hit is not None:
                self.claims.release(key)
                await self._finish(cache_hit_row(job.row, hit), None)
                return False
            journaled = [p for p in self._open_pending() if p.fingerprint == job.fingerprint]
            if journaled:
                job.reattach = journaled[0]
        return True

    async def _one(self, job: _Job) -> None:
        """Take one job to its terminal row (or leave it pending in the journal)."""
        if (job.reattach is not None or not self.options.force) and not await self._claim(job):
            return
        try:
            if job.reattach is not None:
                await self._reattach(job)
            else:
                await self._submit_and_follow(job)
        except _LeftPending:
            self._pending_left += 1
            self._tick()
        except asyncio.CancelledError:
            if job.request_id is not None and "status" not in job.row:
                if job.row.get("completed_at") is not None:
                    self._pending_left += 1  # generated and billed: a resume downloads it, nothing is lost
                else:
                    await _uninterruptible(self._cancel_in_flight(job))
            raise
        finally:
            if "status" not in job.row:  # no row queued (left pending): free the claim now;
                self.claims.release(self._claim_key(job))  # otherwise once the row is in the log

    async def _submit_and_follow(self, job: _Job) -> None:
        price = job.request.cost_usd()
        await self._slots.acquire()
        try:
            if not await self.budget.reserve(price):
                await self._finish(
                    {
                        **job.row,
                        "status": "skipped_budget",
                        "error_type": "budget",
                        "error": f"max cost ${self.options.max_cost_usd:.2f} would be exceeded",
                        "logged_at": utcnow(),
                    },
                    None,
                )
                return
            job.reserved = price
            submitted = await self._submit(job)
            if not submitted:
                return
            completed = await self._follow(job)
        finally:
            self._slots.release()
        if completed is not None:
            await self._collect(job, completed)

    async def _reattach(self, job: _Job) -> None:
        p = job.reattach
        assert p is not None
        job.request_id = p.request_id
        job.row.update(request_id=p.request_id, submitted_at=p.submitted_at)
        job.reserved = job.request.cost_usd()
        self.budget.force_reserve(job.reserved)
        if p.downloaded is not None and self.store.has_video(p.downloaded["video_path"]):
            job.row.update(p.downloaded)  # the video is already here: never download it twice
            await self._succeed(job, media_path=self.store.video_file(p.downloaded["video_path"]))
            return
        async with self._slots:
            completed = await self._follow(job)
        if completed is not None:
            await self._collect(job, completed)

    async def _submit(self, job: _Job) -> bool:
        """Submit with retries of transient errors; journal the request id before anything else."""
        request_id = await self._with_retries(
            job,
            lambda: self.backend.submit(job.request, fingerprint=job.fingerprint),
            "submit_error",
            count_attempts=True,
        )
        if request_id is None:
            return False
        submitted_at = utcnow()
        self.journal.submitted(
            request_id=request_id,
            fingerprint=job.fingerprint,
            backend=self.backend.name,
            endpoint=self.backend.endpoint,
            input=job.request.arguments(),
            submitted_at=submitted_at,
            sweep={**job.meta, "repeat": job.repeat},
        )
        job.request_id = request_id
        self._submitted += 1
        job.row.update(request_id=request_id, submitted_at=submitted_at)
        return True

    async def _follow(self, job: _Job) -> Completed | None:
        """Poll until COMPLETED; fail on a completed-with-error; cancel at fal on timeout."""
        assert job.request_id is not None
        deadline = None
        if self.options.request_timeout_s is not None:
            deadline = job.row["submitted_at"] + timedelta(seconds=self.options.request_timeout_s)
        errors = 0
        while True:
            if deadline is not None and utcnow() > deadline:
                if await self._cancel_quietly(job.request_id) == "completed":
                    deadline = None  # it finished just now and is billed: collect it after all
                    continue
                await self._fail(
                    job, "timeout", f"no result after {self.options.request_timeout_s:g} s; cancelled at fal"
                )
                return None
            try:
                status = await self.backend.status(job.request_id)
            except BackendError as exc:
                if exc.transient:
                    errors += 1
                    if errors > self.options.max_poll_errors:
                        raise _LeftPending() from exc
                    await asyncio.sleep(self.options.backoff.delay(min(errors, 6), exc.retry_after_s, self._rng))
                    continue
                await self._fail(job, exc.error_type or "status_error", str(exc))
                return None
            errors = 0
            if isinstance(status, InProgress) and job.row.get("started_at") is None:
                job.row["started_at"] = utcnow()
            elif isinstance(status, Completed):
                self._timings(job.row, status)
                if status.error or status.error_type:
                    kind = "cancelled" if status.error_type == "request_cancelled" else "failed"
                    await self._fail(job, status.error_type or "model_error", status.error or "failed", status=kind)
                    return None
                return status
            elif isinstance(status, Queued):
                pass
            await asyncio.sleep(self.poll_interval_s)

    @staticmethod
    def _timings(row: dict[str, Any], status: Completed) -> None:
        completed = utcnow()
        row["completed_at"] = completed
        inference = status.metrics.get("inference_time") if status.metrics else None
        if isinstance(inference, (int, float)):
            row["inference_s"] = float(inference)
            row["started_at"] = completed - timedelta(seconds=float(inference))
        submitted = row.get("submitted_at")
        if submitted is not None:
            # queue_s + inference_s == total_s (clamped: fal's clock and ours differ by ms).
            row["total_s"] = (completed - submitted).total_seconds()
            started = row.get("started_at") or completed
            row["started_at"] = max(started, submitted)
            row["queue_s"] = (row["started_at"] - submitted).total_seconds()
            row["inference_s"] = (completed - row["started_at"]).total_seconds()

    async def _collect(self, job: _Job, completed: Completed) -> None:
        """Fetch the result and download the video (with retries), then write the ok row."""
        result = await self._with_retries(job, lambda: self.backend.result(job.request_id), "result_error")
        if result is None:
            return
        video = result.get("video") if isinstance(result, dict) else None
        url = video.get("url") if isinstance(video, dict) else None
        if not url:
            await self._fail(job, "bad_result", f"result has no video url: {json.dumps(result)[:200]}")
            return
        job.row["video_url"] = url
        async with self._downloads:
            fetched = await self._download(job, url)
        if fetched is None:
            return
        rel = self.store.ingest_video(fetched.path, fetched.sha256)
        job.row.update(
            video_path=rel, video_sha256=fetched.sha256, video_bytes=fetched.bytes, download_s=fetched.seconds
        )
        self.journal.downloaded(
            request_id=job.request_id,
            video_path=rel,
            video_sha256=fetched.sha256,
            video_bytes=fetched.bytes,
            video_url=url,
            download_s=fetched.seconds,
            started_at=job.row.get("started_at"),
            completed_at=job.row.get("completed_at"),
            queue_s=job.row.get("queue_s"),
            inference_s=job.row.get("inference_s"),
            total_s=job.row.get("total_s"),
        )
        await self._succeed(job, media_path=self.store.video_file(rel))

    async def _download(self, job: _Job, url: str):
        if self._http is None:
            self._http = httpx.AsyncClient(follow_redirects=True)
        for attempt in range(1, self.options.download_attempts + 1):
            tmp = self.store.new_tmp_path(".mp4")
            try:
                return await download(self._http, url, tmp, max_bytes=self.options.max_video_bytes)
            except DownloadError as exc:
                if exc.transient and attempt < self.options.download_attempts:
                    await asyncio.sleep(self.options.backoff.delay(attempt, None, self._rng))
                    continue
                # fal generated (and billed) the clip; only our copy failed.
                await self._fail(
                    job,
                    "bad_video" if exc.error_type in ("truncated", "bad_video") else exc.error_type,
                    str(exc),
                    charged=True,
                )
                return None
        return None

    async def _with_retries(
        self, job: _Job, call: Callable[[], Any], default_error_type: str, *, count_attempts: bool = False
    ) -> Any:
        """``await call()``, retrying transient BackendErrors with backoff; on a permanent error (or
        when retries run out) log the job ``failed`` and return None. ``count_attempts`` records
        the number of tries in the row's ``attempts`` column."""
        attempt = 0
        while True:
            attempt += 1
            if count_attempts:
                job.row["attempts"] = attempt
            try:
                return await call()
            except BackendError as exc:
                if exc.transient and attempt < self.options.max_submit_attempts:
                    await asyncio.sleep(self.options.backoff.delay(attempt, exc.retry_after_s, self._rng))
                    continue
                await self._fail(job, exc.error_type or default_error_type, str(exc))
                return None

    async def _succeed(self, job: _Job, media_path) -> None:
        if self.options.media_hook is not None:
            try:
                job.row.update(await asyncio.to_thread(self.options.media_hook, str(media_path)))
            except Exception as exc:  # noqa: BLE001 - metrics must never lose a paid result
                log.warning("media analysis failed for %s: %s", media_path, exc)
        cost = job.request.cost_usd()
        await self._finish({**job.row, "status": "ok", "cost_usd": cost, "logged_at": utcnow()}, job, charged=cost)

    async def _fail(
        self, job: _Job, error_type: str, message: str, *, status: str = "failed", charged: bool = False
    ) -> None:
        cost = job.request.cost_usd() if charged else 0.0
        row = {
            **job.row,
            "status": status,
            "error_type": error_type,
            "error": message[:2000],
            "cost_usd": cost,
            "logged_at": utcnow(),
        }
        await self._finish(row, job, charged=cost)

    async def _finish(self, row: dict[str, Any], job: _Job | None, charged: float = 0.0) -> None:
        """Queue one terminal row for the run log (see :meth:`_flush_rows`) and settle the budget."""
        if job is not None:
            job.row["status"] = row["status"]
            if job.reserved:
                await self.budget.settle(job.reserved, charged)
                job.reserved = 0.0
        self._unwritten.append((row, job))
        self._rows.append(row)
        self._tick()

    def _flush_rows(self) -> None:
        """Write the queued rows as one part file, then journal each request ``done``.

        No await between the two: an interrupt cannot split them. A crash before the write
        loses no paid work: those requests are still pending in the journal (with their
        ``downloaded`` facts), so a resume writes their rows without submitting or downloading
        again."""
        if not self._unwritten:
            return
        batch, self._unwritten = self._unwritten, []
        try:
            self.store.append([row for row, _ in batch])
        except BaseException:
            self._unwritten[:0] = batch
            raise
        for row, job in batch:
            if job is not None:
                if job.request_id is not None:
                    self.journal.done(request_id=job.request_id, run_id=row["run_id"], status=row["status"])
                self.claims.release(self._claim_key(job))  # a waiting twin now finds this row

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(ROW_FLUSH_INTERVAL_S)
            try:
                self._flush_rows()
            except OSError as exc:  # kept queued: the next flush (or the final one) retries
                log.warning("could not write %d rows to the run log yet: %s", len(self._unwritten), exc)

    # -- interruption ----------------------------------------------------------------------
    async def _cancel_in_flight(self, job: _Job) -> None:
        """On interrupt: cancel at fal and log ``cancelled`` — unless fal says it already finished
        (then it is billed: leave it in the journal so a resume collects the paid result)."""
        assert job.request_id is not None
        try:
            answer = await asyncio.wait_for(self.backend.cancel(job.request_id), timeout=15)
        except Exception as exc:  # noqa: BLE001
            await self._fail(
                job,
                "interrupted",
                f"interrupted; the cancel call failed ({exc}): fal may still run and bill it",
                status="cancelled",
            )
            return
        outcome = answer if answer != "requested" else await self._confirm_cancel(job.request_id)
        if outcome == "completed":
            self._pending_left += 1
            return
        note = {
            "cancelled": "interrupted by the user; cancelled at fal",
            "requested": "interrupted by the user; cancellation requested at fal (a runner already "
            "working may still finish it)",
            "unknown": "interrupted by the user; fal no longer knows this request",
        }[outcome]
        await self._fail(job, "interrupted", note, status="cancelled")

    async def _confirm_cancel(self, request_id: str, timeout_s: float = 3.0) -> str:
        """Poll briefly after a cancel: "cancelled", "completed" (it finished anyway) or "requested"."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            try:
                status = await self.backend.status(request_id)
            except BackendError:
                break
            if isinstance(status, Completed):
                return "cancelled" if (status.error or status.error_type) else "completed"
            await asyncio.sleep(min(0.2, self.poll_interval_s))
        return "requested"

    async def _cancel_quietly(self, request_id: str) -> str:
        try:
            return await asyncio.wait_for(self.backend.cancel(request_id), timeout=15)
        except Exception as exc:  # noqa: BLE001
            log.warning("cancel of %s failed: %s", request_id, exc)
            return "failed"

    async def _close_http(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- progress --------------------------------------------------------------------------
    def _open_progress(self, total: int, sweep_id: str | None) -> None:
        if not self.options.progress:
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=sweep_id or "resume", unit="clip", dynamic_ncols=True)
        self._tick(advance=False)

    def _tick(self, advance: bool = True) -> None:
        if self._bar is None:
            return
        ok = sum(1 for r in self._rows if r["status"] == "ok")
        failed = sum(1 for r in self._rows if r["status"] == "failed")
        spent = sum(r.get("cost_usd") or 0.0 for r in self._rows)
        label = "at fal prices" if self.backend.name == "emulator" else "spent"
        self._bar.set_postfix_str(f"${spent:.2f} {label}, {ok} ok, {failed} failed", refresh=not advance)
        if advance:
            self._bar.update(1)

    def _close_progress(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
