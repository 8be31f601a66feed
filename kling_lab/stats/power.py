"""How many repeats per arm a fixed grid needs: two sample-size rules for a difference ``d`` and noise ``σ``.

- :func:`repeats_for_power`: to *detect* a difference ``d`` between two arms with a two-sided
  two-sample t-test at level ``alpha`` with probability ``power``. Exact for normal noise: the power at
  ``n`` repeats per arm is ``P(|T| > t(1 − α/2, 2n − 2))`` with ``T`` noncentral t,
  ``df = 2n − 2``, ``ncp = (d/σ)·√(n/2)``; the smallest such ``n`` (≈ ``2 (z_{1−α/2} + z_power)² σ² / d²``).
- :func:`repeats_to_pick`: to *pick* the better of two arms ``d`` apart (the one with the higher mean)
  with probability ``confidence``: ``Φ((d/σ)·√(n/2)) ≥ confidence``, i.e.
  ``n = ⌈2 (z_confidence σ / d)²⌉``. Picking needs fewer clips than proving: the pick is right 95 %
  of the time long before a test could reject. A race caps each arm at this many clips.
"""

from __future__ import annotations

import math

MAX_REPEATS = 100_000


def _check(sd: float, difference: float) -> None:
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"noise SD must be a finite number >= 0, got {sd!r}")
    if not (math.isfinite(difference) and difference > 0):
        raise ValueError(f"difference must be a number > 0, got {difference!r}")


def power_at(n: int, sd: float, difference: float, alpha: float = 0.05) -> float:
    """Power of the two-sided two-sample t-test with ``n`` repeats per arm."""
    from scipy import stats

    _check(sd, difference)
    if n < 2:
        return 0.0
    if sd == 0:
        return 1.0
    df = 2 * n - 2
    ncp = difference / sd * math.sqrt(n / 2)
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))


def repeats_for_power(sd: float, difference: float, power: float = 0.8, alpha: float = 0.05) -> int:
    """The fewest repeats per arm (≥ 2) that detect ``difference`` with ``power`` at level ``alpha``."""
    from scipy import stats

    _check(sd, difference)
    if sd == 0:
        return 2
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n = max(2, math.floor(2 * (z * sd / difference) ** 2))  # the normal answer, a lower bound for the t test
    while power_at(n, sd, difference, alpha) < power:
        n += 1
        if n > MAX_REPEATS:
            raise ValueError(f"more than {MAX_REPEATS} repeats per arm: the difference is tiny against the noise")
    return n


def repeats_to_pick(sd: float, difference: float, confidence: float = 0.95) -> int:
    """The fewest repeats per arm (≥ 1) with which the better of two arms ``difference`` apart has the
    higher mean with probability ``confidence`` (normal noise of SD ``sd``)."""
    from scipy import stats

    _check(sd, difference)
    n = math.ceil(2 * (stats.norm.ppf(confidence) * sd / difference) ** 2 - 1e-9)
    return min(max(1, n), MAX_REPEATS)


__all__ = ["power_at", "repeats_for_power", "repeats_to_pick"]
