"""The life of one job: submit → follow → collect, ending in exactly one terminal row.

::

    reserve price (or skipped_budget) ─► upload images ─► intent ─► submit ─► journal ─► poll ─► result ─► download ─► ok row
    journaled already (re-attach) ──────────────────────────────────────────────────► poll ─► ...   (never submitted again)

Every call to fal goes through the one retry policy (:func:`kling_lab.runner.retry.retry`):
transient errors are retried with backoff, permanent ones fail the row at once. A submit whose
answer was lost is never re-sent blindly: its orphan is looked for first
(:mod:`kling_lab.runner.orphans`). A paid request whose result or video cannot be fetched right
now stays in the journal (``left_pending``): a resume or a re-run collects it by its request id
and never submits again; only when fal says the video is gone does its row become final. An
interrupt cancels it at fal and logs it ``cancelled``. The claim that guards submitting is taken
and released by the runner (:mod:`kling_lab.runner.orchestrator`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from kling_lab.backends.base import Completed, InProgress, Queued, Status
from kling_lab.errors import BackendError, DownloadError, SubmitUnanswered
from kling_lab.models import ModelRequest
from kling_lab.runner.cancel import cancel_on_interrupt, cancel_quietly, settled, uninterruptible
from kling_lab.runner.context import RunContext
from kling_lab.runner.downloads import fetch_to_tmp, ingest_left_download, left_download
from kling_lab.runner.events import TERMINAL_STATES, JobState
from kling_lab.runner.journal import AmbiguousSubmit, PendingRequest
from kling_lab.runner.retry import retry
from kling_lab.runner.rows import base_row, cache_hit_row, final_skip_row
from kling_lab.util.clock import utcnow
from kling_lab.util.text import canonical_json

log = logging.getLogger("kling_lab.runner")

GONE_STATUS = (404, 410)  # fal no longer has the result / the file


class LeftPending(Exception):
    """The request is paid (or may be) but cannot be collected now: it stays in the journal for a resume."""


class _TimedOut(Exception):
    """The request's ``request_timeout_s`` passed."""


class _NoBudget(Exception):
    """A new submit attempt (after an unanswered one) does not fit the budget."""


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
    final_source: Mapping[str, Any] | None = None  # an earlier final refusal: not submitted again
    request_id: str | None = None
    reserved: float = 0.0  # budget reserved for it, until its row settles it
    ended: bool = False  # its terminal event was emitted
    _shown: tuple[str, int | None] | None = None  # the last state (and queue position) emitted
    _intent: str | None = None  # the journal intent of its submit
    _intent_at: Any = None  # when that intent was journaled (an orphan was sent after it)
    _arguments: dict[str, Any] | None = None  # the input as sent (local images as their fal URLs)
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
        self.row["fallbacks_disabled"] = bool(getattr(backend, "disables_fallbacks", False))

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
            await self._keep_reserved()
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

    def log_final_skip(self, source: Mapping[str, Any]) -> None:
        """End as a $0 ``skipped_final`` row: fal refused this input before (see runner.outcomes)."""
        row = final_skip_row(self.row, source)
        self.ctx.writer.add(row)
        self.emit("skipped_final", row=MappingProxyType(row), message=row["error"])

    def collected_elsewhere(self) -> None:
        """End without a row: another runner collected its journaled request meanwhile."""
        self.emit("cache_hit", message="collected by another runner")

    async def _submit_and_follow(self) -> None:
        ctx = self.ctx
        await ctx.slots.acquire()
        try:
            if not await self._reserve():
                return
            if not await self._submit():
                return
            completed = await self._follow()
        finally:
            ctx.slots.release()
        if completed is not None:
            await self._collect()

    async def _reserve(self) -> bool:
        """Reserve the price, or end ``skipped_budget`` (False)."""
        ctx = self.ctx
        if await ctx.budget.reserve(self.price):
            self.reserved = self.price
            return True
        error = ctx.budget.describe_refusal()
        row = {**self.row, "status": "skipped_budget", "error_type": "budget", "error": error}
        row["logged_at"] = utcnow()
        ctx.writer.add(row)  # the claim is freed when this returns, not with the row
        self.emit("skipped_budget", row=MappingProxyType(row), message=error)
        return False

    async def _reattach(self) -> None:
        ctx, p = self.ctx, self.reattach
        assert p is not None
        self.request_id = p.request_id
        self.row.update(request_id=p.request_id, submitted_at=p.submitted_at, adopted=p.adopted)
        self.row["arguments_json"] = canonical_json(p.input)
        self.reserved = self.price
        ctx.budget.force_reserve(self.reserved)
        if p.downloaded is not None:
            rel = p.downloaded.get("video_path")
            if ctx.store.has_video(rel) or ingest_left_download(ctx.store, p.request_id, p.downloaded):
                self.row.update(p.downloaded)  # the video is already here: never download it twice
                await self._succeed(ctx.store.video_file(p.downloaded["video_path"]))
                return
        if p.video_url is not None:
            # fal completed it and its video URL is known (downloadable for days): no need to poll.
            self.row["video_url"] = p.video_url
            await self._download(p.video_url)
            return
        async with ctx.slots:
            completed = await self._follow()
        if completed is not None:
            await self._collect()

    # -- submit ----------------------------------------------------------------------------
    async def _submit(self) -> bool:
        """Upload local images (once ever each), journal the intent, submit (one POST per attempt,
        transient errors retried), journal the request id before anything else. False when the
        job ended without a request."""
        ctx = self.ctx
        try:
            urls = await retry(lambda: ctx.uploads.urls(self.request), ctx.options.submit_policy, rng=ctx.rng)
        except BackendError as exc:
            await self._fail(exc.error_type or "upload_error", f"upload to fal storage failed: {exc}")
            return False
        self._arguments = self.request.sent_arguments(urls)
        self.row["arguments_json"] = canonical_json(self._arguments)
        self._intent_at = utcnow()
        self._intent = ctx.journal.intent(
            fingerprint=self.fingerprint,
            backend=ctx.backend.name,
            endpoint=self.endpoint,
            input=self._arguments,
            sweep=self._sweep_meta(),
            price_usd=self.price,
        )
        try:
            request_id = await retry(
                self._submit_once, ctx.options.submit_policy, rng=ctx.rng, on_attempt=self._count_attempt
            )
        except _NoBudget:
            ctx.journal.intent_closed(intent_id=self._intent, reason="budget")
            await self._reserve()  # logs skipped_budget (the cap cannot hold another attempt)
            return False
        except BackendError as exc:
            ctx.journal.intent_closed(intent_id=self._intent, reason=exc.error_type or "submit_error")
            message = str(exc)
            if isinstance(exc, SubmitUnanswered):
                message += "; fal may have created it: its price stays reserved and `kling-lab reconcile` looks for it"
            await self._fail(exc.error_type or "submit_error", message)
            return False
        if self.request_id is None:  # not adopted: journal the id fal just gave
            self._journal_submitted(request_id)
        self.emit("queued")
        return True

    def _sweep_meta(self) -> dict[str, Any]:
        return {**self.meta, "repeat": self.repeat, "model": self.request.alias, **self._image_meta()}

    def _image_meta(self) -> dict[str, Any]:
        return {k: v for k in ("image_sha256", "end_image_sha256") if (v := self.row.get(k)) is not None}

    @property
    def arguments(self) -> dict[str, Any]:
        return self._arguments if self._arguments is not None else self.request.arguments()

    def _journal_submitted(self, request_id: str) -> None:
        ctx = self.ctx
        submitted_at = utcnow()
        self.request_id = request_id  # first: if the write fails, the id is still known (rescue)
        self.row.update(request_id=request_id, submitted_at=submitted_at)
        ctx.submitted += 1
        ctx.journal.submitted(
            request_id=request_id,
            fingerprint=self.fingerprint,
            backend=ctx.backend.name,
            endpoint=self.endpoint,
            input=self.arguments,
            submitted_at=submitted_at,
            sweep=self._sweep_meta(),
            intent_id=self._intent,
        )

    async def _submit_once(self) -> str:
        """One submit POST. If it goes unanswered, look for its orphan before another attempt."""
        ctx = self.ctx
        if self.reserved == 0 and not await ctx.budget.reserve(self.price):
            raise _NoBudget()
        if self.reserved == 0:
            self.reserved = self.price
        attempt = asyncio.ensure_future(ctx.backend.submit(self.endpoint, self.arguments, fingerprint=self.fingerprint))
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            # Interrupted with the POST on the wire: fal may create (and bill) the job, so wait for
            # its answer (never for another attempt) and journal the id, for run() to cancel at fal.
            await settled(attempt)
            if not attempt.cancelled() and attempt.exception() is None:
                self._journal_submitted(attempt.result())
            raise
        except SubmitUnanswered as exc:
            adopted = await self._after_unanswered(exc)
            if adopted is not None:
                return adopted
            raise

    async def _after_unanswered(self, exc: SubmitUnanswered) -> str | None:
        """The POST may have created a paid job: hold its price, look for it at fal; its id if found."""
        ctx = self.ctx
        assert self._intent is not None
        ambiguous_id = ctx.journal.unanswered(intent_id=self._intent, error=str(exc))
        await ctx.hold(ambiguous_id, self.reserved)  # the attempt's reservation now stands for the possible orphan
        self.reserved = 0.0
        entry = AmbiguousSubmit(
            ambiguous_id=ambiguous_id,
            intent_id=self._intent,
            fingerprint=self.fingerprint,
            backend=ctx.backend.name,
            endpoint=self.endpoint,
            input=self.arguments,
            sweep=self._sweep_meta(),
            price_usd=self.price,
            since=self._intent_at or utcnow(),
            until=utcnow(),
        )
        record = await ctx.orphans.wait_for(entry, ctx.options.orphan_wait_s)
        if record is None:
            return None
        pending = ctx.orphans.adopt(entry, record)
        self.reserved = ctx.release_hold(ambiguous_id)  # the orphan is this job's request after all
        self.request_id = pending.request_id
        self.row.update(request_id=pending.request_id, submitted_at=pending.submitted_at, adopted=True)
        ctx.submitted += 1
        return pending.request_id

    def _count_attempt(self, attempt: int) -> None:
        self.row["attempts"] = attempt

    # -- follow ----------------------------------------------------------------------------
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

    # -- collect ---------------------------------------------------------------------------
    async def _collect(self) -> None:
        """Fetch the result (its video URL is journaled at once), then download the video."""
        ctx, request_id = self.ctx, self.request_id
        assert request_id is not None
        try:
            result = await retry(
                lambda: ctx.backend.result(self.endpoint, request_id), ctx.options.submit_policy, rng=ctx.rng
            )
        except BackendError as exc:
            if exc.status_code in GONE_STATUS:  # completed (paid), but fal no longer has its result
                await self._fail(
                    "result_expired",
                    f"fal no longer has the result of this paid request ({exc}); the video is lost",
                    charged=True,
                )
            elif exc.transient:
                raise LeftPending(
                    f"paid, but its result could not be fetched yet ({exc}); a resume fetches it"
                ) from exc
            else:
                await self._fail(exc.error_type or "result_error", str(exc))
            return
        url = self.request.endpoint.video_url(result)
        if not url:
            await self._fail("bad_result", f"result has no video url: {json.dumps(result)[:200]}", charged=True)
            return
        self.row["video_url"] = url
        ctx.journal.result(request_id=request_id, video_url=url)
        await self._download(url)

    async def _download(self, url: str) -> None:
        """Download (with retries) into ``tmp/dl-<request id>.mp4``, journal it, move it into the store.

        A download that keeps failing leaves the paid request in the journal with its URL: a
        resume downloads it again (never submits again). Only a video fal says is gone (404/410),
        too large, or not playable ends the row (``failed``, charged: fal made and billed it)."""
        ctx, request_id = self.ctx, self.request_id
        assert request_id is not None
        async with ctx.downloads:
            self.emit("downloading")
            try:
                left = left_download(ctx.store, request_id)
                if left is None:
                    left = await retry(
                        lambda: fetch_to_tmp(ctx.http(), ctx.store, request_id, url, ctx.options.max_video_bytes),
                        ctx.options.download_policy,
                        rng=ctx.rng,
                    )
                fetched = left
            except DownloadError as exc:
                if exc.transient:
                    ctx.journal.download_failed(request_id=request_id, error=str(exc), error_type=exc.error_type)
                    raise LeftPending(
                        f"paid, but the video download failed ({exc}); `kling-lab resume` downloads it again"
                    ) from exc
                kind = "video_expired" if exc.error_type in ("http_404", "http_410") else exc.error_type
                await self._fail(kind, str(exc), charged=True)
                return
        rel = ctx.store.video_relpath(fetched.sha256)
        facts: dict[str, Any] = dict(
            video_path=rel, video_sha256=fetched.sha256, video_bytes=fetched.bytes, download_s=fetched.seconds
        )
        self.row.update(facts)
        timings = ("started_at", "completed_at", "queue_s", "inference_s", "total_s")
        # Journal first, then move the verified file into place: a kill in between leaves the
        # file in tmp/ under its request id, and the resume ingests it instead of downloading again.
        ctx.journal.downloaded(request_id=request_id, **facts, video_url=url, **{k: self.row.get(k) for k in timings})
        try:
            ctx.store.ingest_video(fetched.path, fetched.sha256)
        except OSError as exc:
            raise LeftPending(f"paid and downloaded, but the store could not take the video ({exc})") from exc
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

    async def _keep_reserved(self) -> None:
        """Left for a resume (paid, or maybe): its price stays counted, but not as in flight."""
        if self.reserved:
            await self.ctx.budget.hold(self.reserved)
            self.reserved = 0.0

    async def stop_after_halt(self) -> None:
        """The run halted (its journal cannot be written): cancel this submitted request at fal."""
        await uninterruptible(self._stop_in_flight())

    async def _stop_in_flight(self) -> None:
        """On interrupt: cancel at fal and log ``cancelled`` — unless fal finished it already
        (then it is billed: leave it in the journal so a resume collects the paid result)."""
        note = None
        if self.row.get("completed_at") is None:
            assert self.request_id is not None
            note = await cancel_on_interrupt(self.ctx.backend, self.endpoint, self.request_id, self.ctx.poll_interval_s)
        if note is None:
            await self._keep_reserved()
            self.ctx.pending_left += 1
            self.emit("left_pending", message="interrupted after fal finished it; a resume collects it")
        else:
            await self._fail("interrupted", note, status="cancelled")


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
