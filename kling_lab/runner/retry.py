"""The one retry policy of the runner: exponential backoff with full jitter, honouring Retry-After.

:func:`retry` awaits a call, retrying the errors that say they are transient (``exc.transient``,
as :class:`~kling_lab.errors.BackendError` and :class:`~kling_lab.errors.DownloadError` do) after
:meth:`Backoff.delay`; a permanent error, or the last allowed attempt's error, is raised to the
caller, which decides what it means (a failed row, a request left pending, ...).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """``delay(n)`` for the n-th retry (1-based): base·2^(n-1), capped, jittered in [½, 1]·d."""

    base_s: float = 1.0
    cap_s: float = 60.0

    def delay(self, attempt: int, retry_after_s: float | None = None, rng: random.Random | None = None) -> float:
        raw = min(self.cap_s, self.base_s * (2 ** max(0, attempt - 1)))
        jittered = raw * (0.5 + 0.5 * (rng or random).random())
        if retry_after_s is not None:
            return max(jittered, min(retry_after_s, self.cap_s * 5))
        return jittered


@dataclass(frozen=True)
class RetryPolicy:
    """How often to try one call: ``max_attempts`` tries in all (at least one).

    ``max_step`` caps the attempt number given to :meth:`Backoff.delay` (the poll loop waits
    at most the 6th step's delay between its many attempts)."""

    max_attempts: int
    backoff: Backoff = Backoff()
    retry_on: tuple[type[Exception], ...] = (Exception,)
    max_step: int | None = None

    def delay(self, attempt: int, exc: BaseException, rng: random.Random | None = None) -> float:
        step = attempt if self.max_step is None else min(attempt, self.max_step)
        return self.backoff.delay(step, getattr(exc, "retry_after_s", None), rng)

    def should_retry(self, attempt: int, exc: BaseException) -> bool:
        """Retry after ``attempt`` failed with ``exc``? Only transient errors, and attempts are capped."""
        return isinstance(exc, self.retry_on) and bool(getattr(exc, "transient", False)) and attempt < self.max_attempts


async def retry(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    on_attempt: Callable[[int], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``await call()``; after a transient error sleep the backoff and call again.

    ``on_attempt(n)`` is told each attempt's number before it starts (the row's ``attempts``
    column); ``sleep`` waits between attempts. Errors not in ``policy.retry_on``, permanent
    errors and the error of the last allowed attempt propagate unchanged."""
    attempt = 0
    while True:
        attempt += 1
        if on_attempt is not None:
            on_attempt(attempt)
        try:
            return await call()
        except Exception as exc:
            if not policy.should_retry(attempt, exc):
                raise
            await sleep(policy.delay(attempt, exc, rng))
