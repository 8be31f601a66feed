"""What a run will do, known before it starts: how many requests come from the cache, how many
are already submitted (re-attached, never paid twice) and how many are left to pay for.

The runner builds a :class:`Plan` from the same lookups it then executes, so the line printed
before a re-run ("7 requests: 5 from the cache ($0), 2 to submit: $2.80") cannot disagree with
what the run does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kling_lab.estimate import WORST_CASE_SECONDS


@dataclass(frozen=True)
class Plan:
    """The split of a sweep's requests before anything is submitted."""

    sweep_id: str
    total: int  # requests in the sweep
    cached: int  # an ok row exists: a $0 cache-hit row, nothing submitted
    reattached: int  # submitted by an earlier run (journaled): collected, not paid again
    to_submit: int  # new submissions
    to_pay_usd: float  # their price if all succeed
    by_duration: dict[str, int] = field(default_factory=dict)  # of the new submissions
    refused: int = 0  # fal refused the same input before: not submitted again (a skipped_final row)

    def worst_case_s(self, concurrency: int) -> float:
        """Wall time if every new submission takes the conservative per-clip guess."""
        slowest = max(
            (WORST_CASE_SECONDS.get(d, max(WORST_CASE_SECONDS.values())) for d in self.by_duration), default=0
        )
        return math.ceil(self.to_submit / max(1, concurrency)) * slowest

    def describe(self, backend: str, concurrency: int, cap_usd: float | None = None) -> str:
        """One line for stderr before the run: the split, what is left to pay, the cap."""
        parts = []
        if self.cached:
            parts.append(f"{self.cached} from the cache ($0)")
        if self.reattached:
            parts.append(f"{self.reattached} already submitted (collected, not paid again)")
        if self.refused:
            parts.append(f"{self.refused} refused by fal before (skipped; --retry-failed submits them)")
        durations = ", ".join(f"{n} × {d} s" for d, n in sorted(self.by_duration.items(), key=lambda kv: int(kv[0])))
        parts.append(f"{self.to_submit} to submit" + (f" ({durations})" if durations else ""))
        head = f"{self.total} request{'' if self.total == 1 else 's'}: {', '.join(parts)}"
        if backend == "emulator":
            return (
                f"emulator (free, placeholder videos, not Kling output): {head}; ${self.to_pay_usd:.2f} at fal prices"
            )
        minutes = self.worst_case_s(concurrency) / 60
        cap = f"; cap ${cap_usd:.2f}" if cap_usd is not None else ""
        return (
            f"{backend}: {head}; ${self.to_pay_usd:.2f} to pay if all succeed, "
            f"worst case ≈ {minutes:.0f} min at concurrency {concurrency}{cap}"
        )


__all__ = ["Plan"]
