"""The life of one job: submit → follow → collect, ending in exactly one terminal row.

::

    reserve price (or skipped_budget) ─► upload images ─► submit ─► journal ─► poll ─► result ─► download ─► ok row
    journaled already (re-attach) ───────────────────────────► poll ─► ...     (never submitted again)

Every call to fal goes through the one retry policy (:func:`kling_lab.runner.retry.retry`):
transient errors are retried with backoff, permanent ones fail the row at once. Losing
contact with fal for too long leaves the request in the journal (``left_pending``); an
interrupt cancels it at fal and logs it ``cancelled``. The claim that guards submitting is
taken and released by the runner (:mod:`kling_lab.runner.orchestrator`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from kling_lab.backends.base import Completed, InProgress, Queued, Status
from kling_lab.errors import BackendError, DownloadError
from kling_lab.media.download import Downloaded, download
from kling_lab.models import ModelRequest
from kling_lab.runner.cancel import cancel_on_interrupt, cancel_quietly, settled, uninterruptible
from kling_lab.runner.context import RunContext
from kling_lab.runner.events import TERMINAL_STATES, JobState
from kling_lab.runner.journal import PendingRequest
from kling_lab.runner.retry import retry
from kling_lab.runner.rows import base_row, cache_hit_row
from kling_lab.util.clock import utcnow
from kling_lab.util.text import canonical_json

log = logging.getLogger("kling_lab.runner")


class LeftPending(Exception):
    """Lost contact with fal for too long: the request stays in the journal for a later resume."""


class _TimedOut(Exception):
    """The request's ``request_timeout_s`` passed."""


@dataclass(eq=False)
class Job:
    """One request on its way to its row (``row`` holds the columns known so far)."""

    ctx: RunContext
    request: ModelRequest
    fingerprint: str
    repeat: int
    meta: dict[str, Any]
    reattach: PendingRequest | None = None
    cache_source: Mapping[str, Any] | None = None  # an earlier ok row to reuse instead
    request_id: str | None = None
    reserved: float = 0.0  # budget reserved for it, until its row settles it
    ended: bool = False  # its terminal event was emitted
    _shown: tuple[str, int | None] | None = None  # the last state (and queue position) emitted
    row: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        backend = self.ctx.backend
        self.row = base_row(
            request=self.request,
            fingerprint=self.fingerprint,
            repeat=self.repeat,
            sweep_meta=self.meta,
            backend=backend.name,
        )

    def twin(self, reattach: PendingRequest) -> Job:
        """The same item re-attached to another journaled request id (one lost submit response
        can leave several paid ids for one fingerprint: each is collected)."""
        return Job(self.ctx, self.request, self.fingerprint, self.repeat, self.meta, reattach)

    @property
    def endpoint(self) -> str:
        return self.request.endpoint_id

    @property
    def price(self) -> float:
        """What fal charges if it succeeds (the runner refuses sweeps with unknown prices)."""
        cost = self.request.cost_usd()
        assert cost is not None, f"{self.request.alias}: no price"
        return cost

    @property
    def claim_key(self) -> str:
        return self.ctx.claim_key(self.fingerprint)

    # -- events ----------------------------------------------------------------------------
    def emit(self, state: JobState, *, queue_position: int | None = None, **fields: Any) -> None:
        """Tell the observers this job's new state (once per change; nothing after the terminal one)."""
        if self.ended or (state, queue_position) == self._shown:
            return
        self._shown = (state, queue_position)
        self.ended = state in TERMINAL_STATES
        self.ctx.events.emit(self.row, state, request_id=self.request_id, queue_position=queue_position, **fields)

    def end_without_row(self, stopped: BaseException | None) -> None:
        """The terminal event of a job that stopped before its row was queued."""
        if self.ended:
            return
        if self.request_id is not None or self.reattach is not None:
            self.emit("left_pending", message="stopped before its row was written; `kling-lab resume` collects it")
        elif stopped is None or isinstance(stopped, asyncio.CancelledError):
            self.emit("cancelled", message="interrupted before it was submitted")
        else:
            self.emit("failed", message=f"{type(stopped).__name__}: {stopped}")

    # -- the life --------------------------------------------------------------------------
    async def run(self) -> None:
        """Take the job to its terminal row (or leave it pending in the journal)."""
        try:
            if self.reattach is not None:
                await self._reattach()
            else:
                await self._submit_and_follow()
        except LeftPending as exc:
            self.ctx.pending_left += 1
            self.emit("left_pending", message=str(exc))
        except asyncio.CancelledError:
            if self.request_id is not None and "status" not in self.row:
                await uninterruptible(self._stop_in_flight())
            raise

    def log_cache_hit(self, source: Mapping[str, Any]) -> None:
        """End as a $0 row reusing ``source``'s video."""
        row = cache_hit_row(self.row, source)
        self.ctx.writer.add(row)
        self.emit("cache_hit", row=MappingProxyType(row))

    def collected_elsewhere(self) -> None:
        """End without a row: another runner collected its journaled request meanwhile."""
        self.emit("cache_hit", message="collected by another runner")

    async def _submit_and_follow(self) -> None:
        ctx = self.ctx
        price = self.price
        await ctx.slots.acquire()
        try:
            if not await ctx.budget.reserve(price):
                error = f"max cost ${ctx.options.max_cost_usd or 0:.2f} would be exceeded"
                row = {**self.row, "status": "skipped_budget", "error_type": "budget", "error": error}
                row["logged_at"] = utcnow()
                ctx.writer.add(row)  # the claim is freed when this returns, not with the row
                self.emit("skipped_budget", row=MappingProxyType(row), message=error)
                return
            self.reserved = price
            if not await self._submit():
                return
            completed = await self._follow()
        finally:
            ctx.slots.release()
        if completed is not None:
            await self._collect()

    async def _reattach(self) -> None:
        ctx, p = self.ctx, self.reattach
        assert p is not None
        self.request_id = p.request_id
        self.row.update(request_id=p.request_id, submitted_at=p.submitted_at)
        self.row["arguments_json"] = canonical_json(p.input)
        self.reserved = self.price
        ctx.budget.force_reserve(self.reserved)
        if p.downloaded is not None and ctx.store.has_video(p.downloaded["video_path"]):
            self.row.update(p.downloaded)  # the video is already here: never download it twice
            await self._succeed(ctx.store.video_file(p.downloaded["video_path"]))
            return
        async with ctx.slots:
            completed = await self._follow()
        if completed is not None:
            await self._collect()

    async def _submit(self) -> bool:
        """Upload local images (once ever each), then submit with retries of transient errors;
        journal the request id before anything else."""
        ctx = self.ctx
        try:
            urls = await retry(lambda: ctx.uploads.urls(self.request), ctx.options.submit_policy, rng=ctx.rng)
        except BackendError as exc:
            await self._fail(exc.error_type or "upload_error", f"upload to fal storage failed: {exc}")
            return False
        arguments = self.request.sent_arguments(urls)
        self.row["arguments_json"] = canonical_json(arguments)
        try:
            request_id = await retry(
                lambda: self._submit_once(arguments),
                ctx.options.submit_policy,
                rng=ctx.rng,
                on_attempt=self._count_attempt,
            )
        except BackendError as exc:
            await self._fail(exc.error_type or "submit_error", str(exc))
            return False
        self._submitted(request_id, arguments)
        return True

    async def _submit_once(self, arguments: dict[str, Any]) -> str:
        """One submit call, shielded from interrupts: fal may have created (and will bill) the job
        before its answer arrives, so an interrupt waits for that answer (never for another
        attempt) and journals the id it brings, for :meth:`run` to cancel at fal."""
        backend = self.ctx.backend
        attempt = asyncio.ensure_future(backend.submit(self.endpoint, arguments, fingerprint=self.fingerprint))
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            await settled(attempt)
            if not attempt.cancelled() and attempt.exception() is None:
                self._submitted(attempt.result(), arguments)
            raise

    def _submitted(self, request_id: str, arguments: dict[str, Any]) -> None:
        """Journal a new request id (fsync'ed) before anything else happens to it."""
        ctx = self.ctx
        submitted_at = utcnow()
        ctx.journal.submitted(
            request_id=request_id,
            fingerprint=self.fingerprint,
            backend=ctx.backend.name,
            endpoint=self.endpoint,
            input=arguments,
            submitted_at=submitted_at,
            sweep={**self.meta, "repeat": self.repeat, "model": self.request.alias, **self._image_meta()},
        )
        self.request_id = request_id
        ctx.submitted += 1
        self.row.update(request_id=request_id, submitted_at=submitted_at)
        self.emit("queued")

    def _image_meta(self) -> dict[str, Any]:
        return {k: v for k in ("image_sha256", "end_image_sha256") if (v := self.row.get(k)) is not None}

    def _count_attempt(self, attempt: int) -> None:
        self.row["attempts"] = attempt

    async def _follow(self) -> Completed | None:
        """Poll until COMPLETED; fail on a completed-with-error; cancel at fal on timeout."""
        ctx, request_id = self.ctx, self.request_id
        assert request_id is not None
        timeout = ctx.options.request_timeout_s
        deadline = None if timeout is None else self.row["submitted_at"] + timedelta(seconds=timeout)

        async def poll() -> Status:
            if deadline is not None and utcnow() > deadline:
                raise _TimedOut()
            return await ctx.backend.status(self.endpoint, request_id)

        while True:
            try:
                status = await retry(poll, ctx.options.poll_policy, rng=ctx.rng)
            except _TimedOut:
                if await cancel_quietly(ctx.backend, self.endpoint, request_id) == "completed":
                    deadline = None  # it finished just now and is billed: collect it after all
                    continue
                await self._fail("timeout", f"no result after {timeout:g} s; cancelled at fal")
                return None
            except BackendError as exc:
                if exc.transient:
                    raise LeftPending(f"lost contact with fal ({exc}); left in the journal for a resume") from exc
                await self._fail(exc.error_type or "status_error", str(exc))
                return None
            if isinstance(status, Queued):
                self.emit("queued", queue_position=status.position)
            elif isinstance(status, InProgress):
                if self.row.get("started_at") is None:
                    self.row["started_at"] = utcnow()
                self.emit("running")
            elif isinstance(status, Completed):
                record_timings(self.row, status)
                if status.error or status.error_type:
                    kind = "cancelled" if status.error_type == "request_cancelled" else "failed"
                    await self._fail(status.error_type or "model_error", status.error or "failed", status=kind)
                    return None
                return status
            await asyncio.sleep(ctx.poll_interval_s)

    async def _collect(self) -> None:
        """Fetch the result and download the video (with retries), then write the ok row."""
        ctx, request_id = self.ctx, self.request_id
        assert request_id is not None
        try:
            result = await retry(
                lambda: ctx.backend.result(self.endpoint, request_id), ctx.options.submit_policy, rng=ctx.rng
            )
        except BackendError as exc:
            await self._fail(exc.error_type or "result_error", str(exc))
            return
        url = self.request.endpoint.video_url(result)
        if not url:
            await self._fail("bad_result", f"result has no video url: {json.dumps(result)[:200]}")
            return
        self.row["video_url"] = url
        async with ctx.downloads:
            self.emit("downloading")
            try:
                fetched = await retry(lambda: _fetch(ctx, url), ctx.options.download_policy, rng=ctx.rng)
            except DownloadError as exc:  # fal generated (and billed) the clip; only our copy failed
                kind = "bad_video" if exc.error_type in ("truncated", "bad_video") else exc.error_type
                await self._fail(kind, str(exc), charged=True)
                return
        rel = ctx.store.ingest_video(fetched.path, fetched.sha256)
        facts = dict(video_path=rel, video_sha256=fetched.sha256, video_bytes=fetched.bytes, download_s=fetched.seconds)
        self.row.update(facts)
        timings = ("started_at", "completed_at", "queue_s", "inference_s", "total_s")
        ctx.journal.downloaded(request_id=request_id, **facts, video_url=url, **{k: self.row.get(k) for k in timings})
        await self._succeed(ctx.store.video_file(rel))

    # -- endings ---------------------------------------------------------------------------
    async def _succeed(self, media_path: Path) -> None:
        hook = self.ctx.options.media_hook
        if hook is not None:
            try:
                self.row.update(await asyncio.to_thread(hook, str(media_path)))
            except Exception as exc:  # noqa: BLE001 - metrics must never lose a paid result
                log.warning("media analysis failed for %s: %s", media_path, exc)
        cost = self.price
        await self._finish({**self.row, "status": "ok", "cost_usd": cost, "logged_at": utcnow()}, charged=cost)

    async def _fail(self, error_type: str, message: str, *, status: str = "failed", charged: bool = False) -> None:
        cost = self.price if charged else 0.0
        row = {**self.row, "status": status, "error_type": error_type, "error": message[:2000], "cost_usd": cost}
        row["logged_at"] = utcnow()
        await self._finish(row, charged=cost)

    async def _finish(self, row: dict[str, Any], charged: float = 0.0) -> None:
        """Queue the terminal row (its claim is released once it is in the log) and settle the budget."""
        self.row["status"] = row["status"]
        self.ctx.writer.add(row, request_id=self.request_id, claim=self.claim_key)
        if self.reserved:
            await self.ctx.budget.settle(self.reserved, charged)
            self.reserved = 0.0
        self.emit(row["status"], row=MappingProxyType(row), message=row.get("error"))

    async def _stop_in_flight(self) -> None:
        """On interrupt: cancel at fal and log ``cancelled`` — unless fal finished it already
        (then it is billed: leave it in the journal so a resume collects the paid result)."""
        note = None
        if self.row.get("completed_at") is None:
            assert self.request_id is not None
            note = await cancel_on_interrupt(self.ctx.backend, self.endpoint, self.request_id, self.ctx.poll_interval_s)
        if note is None:
            self.ctx.pending_left += 1
            self.emit("left_pending", message="interrupted after fal finished it; a resume collects it")
        else:
            await self._fail("interrupted", note, status="cancelled")


def _fetch(ctx: RunContext, url: str) -> Awaitable[Downloaded]:
    """One download attempt of the video at ``url`` (a fresh temporary file each time)."""
    return download(ctx.http(), url, ctx.store.new_tmp_path(".mp4"), max_bytes=ctx.options.max_video_bytes)


def record_timings(row: dict[str, Any], status: Completed) -> None:
    """Fill ``completed_at``, ``started_at``, ``queue_s``, ``inference_s``, ``total_s`` at completion."""
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
