"""The one clock of the run log (timezone-aware UTC), and the longest timeout kling_lab accepts."""

from __future__ import annotations

from datetime import UTC, datetime

# A request or cell timeout above this is a typo (fal keeps a request's result for days, not
# longer); it also keeps ``timedelta(seconds=...)`` far from overflowing (1e300 did).
MAX_TIMEOUT_S = 7 * 24 * 3600.0


def check_timeout(value: float | None, name: str) -> float | None:
    """``value`` if it is None or a number of seconds in (0, MAX_TIMEOUT_S]; else ValueError naming ``name``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT_S:
        raise ValueError(f"{name} must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds; got {value!r}")
    return float(value)


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


__all__ = ["MAX_TIMEOUT_S", "check_timeout", "utcnow"]
