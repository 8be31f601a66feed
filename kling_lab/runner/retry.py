"""Backoff policy for transient failures: exponential with full jitter, honouring Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass


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
