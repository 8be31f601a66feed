"""Cancelling a request at fal: on timeout, and on interrupt (cleanup that must run to its end)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from kling_lab.backends.base import Backend, Completed
from kling_lab.errors import BackendError

log = logging.getLogger("kling_lab.runner")

CANCEL_TIMEOUT_S = 15.0


async def uninterruptible(coro: Awaitable[None]) -> None:
    """Run cleanup to the end even if cancelled again meanwhile (it protects money)."""
    task = asyncio.ensure_future(coro)
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            continue


async def settled(task: asyncio.Future[Any]) -> None:
    """Wait until ``task`` is done, whatever its outcome, even if cancelled meanwhile (the task
    itself is never cancelled: its outcome, e.g. a request id fal has billed, must not be lost)."""
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            continue


async def cancel_quietly(backend: Backend, endpoint: str, request_id: str) -> str:
    """``backend.cancel``'s answer, or "failed" (logged) if the call itself failed."""
    try:
        return await asyncio.wait_for(backend.cancel(endpoint, request_id), timeout=CANCEL_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001
        log.warning("cancel of %s failed: %s", request_id, exc)
        return "failed"


async def confirm_cancel(
    backend: Backend, endpoint: str, request_id: str, poll_interval_s: float, timeout_s: float = 3.0
) -> str:
    """Poll briefly after a cancel: "cancelled", "completed" (it finished anyway) or "requested"."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        try:
            status = await backend.status(endpoint, request_id)
        except BackendError:
            break
        if isinstance(status, Completed):
            return "cancelled" if (status.error or status.error_type) else "completed"
        await asyncio.sleep(min(0.2, poll_interval_s))
    return "requested"


async def cancel_on_interrupt(backend: Backend, endpoint: str, request_id: str, poll_interval_s: float) -> str | None:
    """Cancel an interrupted request at fal: the note for its ``cancelled`` row, or None when
    fal says it finished anyway (it is billed: it stays in the journal for a resume)."""
    try:
        answer = await asyncio.wait_for(backend.cancel(endpoint, request_id), timeout=CANCEL_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001
        return f"interrupted; the cancel call failed ({exc}): fal may still run and bill it"
    if answer == "requested":
        answer = await confirm_cancel(backend, endpoint, request_id, poll_interval_s)
    if answer == "completed":
        return None
    return {
        "cancelled": "interrupted by the user; cancelled at fal",
        "requested": "interrupted by the user; cancellation requested at fal (a runner already "
        "working may still finish it)",
        "unknown": "interrupted by the user; fal no longer knows this request",
    }[answer]
