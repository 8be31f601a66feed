"""Waiting for a submit claim another runner (or an identical item of this sweep) holds.

While the claim is held: wait, say who holds it once the wait lasts, give up after
``claim_timeout_s``. Once it is ours after a wait, look again: the other runner's result is a
cache hit, or its journaled request is re-attached, instead of paying a second time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Literal

from kling_lab.runner.claims import Claims
from kling_lab.runner.job import Job
from kling_lab.runner.journal import PendingRequest

log = logging.getLogger("kling_lab.runner")

CLAIM_NOTICE_S = 5.0  # say who we are waiting for once a wait lasts this long

ClaimOutcome = Literal["claimed", "busy", "ended"]


async def claim_or_wait(
    job: Job,
    claims: Claims,
    *,
    timeout_s: float,
    poll_s: float,
    open_pending: Callable[[], list[PendingRequest]],
    cached_ok: Callable[[dict[str, str]], dict[str, dict[str, Any]]],
) -> ClaimOutcome:
    """``claimed``: the job may go on; ``busy``: given up waiting; ``ended``: the job ended without
    a request of its own (a cache hit, or collected by the other runner)."""
    key = job.claim_key
    loop = asyncio.get_running_loop()
    started = loop.time()
    waited = noticed = False
    while not claims.try_acquire(key):
        waited = True
        elapsed = loop.time() - started
        who = holder_text(claims.holder(key))
        if not noticed and elapsed >= min(CLAIM_NOTICE_S, timeout_s / 2):
            noticed = True
            log.warning(
                "waiting for %s, which is submitting the same request (%s); giving up after %.0f s",
                who,
                job.fingerprint[:12],
                timeout_s,
            )
        if elapsed >= timeout_s:
            job.emit("cancelled", message=f"not submitted: {who} held its claim for {elapsed:.0f} s; run again later")
            return "busy"
        await asyncio.sleep(poll_s)
    if not waited:
        return "claimed"
    if job.reattach is not None:
        if not any(p.request_id == job.reattach.request_id for p in open_pending()):
            claims.release(key)  # another runner collected it meanwhile
            job.collected_elsewhere()
            return "ended"
        return "claimed"
    hit = cached_ok({job.fingerprint: job.endpoint}).get(job.fingerprint)
    if hit is not None:
        claims.release(key)
        job.log_cache_hit(hit)
        return "ended"
    journaled = [p for p in open_pending() if p.fingerprint == job.fingerprint and not p.owner_alive]
    if journaled:
        job.reattach = journaled[0]
    return "claimed"


def holder_text(holder: dict[str, Any] | None) -> str:
    """Who holds a claim, in words."""
    if not holder:
        return "another job of this run"
    since = f" since {holder['since'][:19]}" if isinstance(holder.get("since"), str) else ""
    return f"process {holder.get('pid', '?')} on {holder.get('host', '?')}{since}"


__all__ = ["CLAIM_NOTICE_S", "ClaimOutcome", "claim_or_wait", "holder_text"]
