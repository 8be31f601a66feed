"""A race's confidence bounds per arm, valid under the repeated looks the race takes.

Model: the clips of arm ``a`` give independent metric values with mean ``μ_a`` and a common SD ``σ``
(the model's repeat-to-repeat noise, which the arms of one sweep share). After each round the race
*looks*: it computes, for every arm, one-sided Student-t bounds around the arm's mean ``x̄_a`` of its
``n_a`` values, with ``s`` the SD pooled over every clip of every arm so far (``df = Σ (n_a − 1)``)::

    upper_a = x̄_a + t(1 − α_up, df) · s / √n_a        lower_a = x̄_a − t(1 − α_low, df) · s / √n_a

**Repeated looks: a union bound over looks and arms.** The race may stop at any look, so the error
``δ = 1 − confidence`` is spent across all of them: look ``r`` (1, 2, …) gets ``δ_r = δ / (r (r + 1))``,
and ``Σ_r δ_r = δ`` whatever the number of rounds (none has to be fixed in advance). Within a look,
``α_up = δ_r / 2`` and ``α_low = δ_r / (2 (K − 1))`` for ``K`` arms. An arm is eliminated when its upper
bound falls below the leader's lower bound, so the best arm ``b`` is ever eliminated only if, at some
look, ``upper_b < μ_b`` (one arm: ``δ_r / 2``) or some other arm's ``lower > μ`` (K − 1 arms: ``δ_r / 2``).
Summed over looks: **P(the best arm is ever eliminated) ≤ δ.** The same event makes "every arm left is
within ``d`` of the leader" (``upper_j − lower_leader ≤ d``) hold with probability ≥ 1 − δ.

**Why Student-t, not empirical-Bernstein or the bootstrap.** Races run on a handful of $1.40 clips per
arm. Empirical-Bernstein bounds (Maurer & Pontil 2009) need a known range and pay a ``7·R·ln(2/δ)/3n``
term that is wider than the range itself below ~30 clips per arm at these levels; a bootstrap of 2–10
values has no finite-sample coverage at all, least of all in the tails a union bound asks for. The
t bound is exact for normal noise with a common SD at a fixed sample size, and it borrows strength
across arms through the pooled SD (2 clips × 12 arms already give 12 degrees of freedom).

**What is assumed, and checked.** Normal-ish noise with a common SD across arms (QC metrics are means
over many frames; the emulator's noise is uniform, lighter-tailed than normal). The pooled SD is
computed from data whose sample sizes the race chose adaptively; the t quantile treats it as
independent of the means, exact for a fixed design and an approximation here. When the noise grows
with the metric (the emulator's does: it is a speed jitter), the arms still in contention are noisier
than the ones ruled out, so once they have enough clips (:data:`MIN_POOL_DF`) the SD is pooled over
them alone (``pool``). ``tests/test_race_rule.py``
checks by simulation that the best arm survives at least ``confidence`` of the time, with normal and
uniform noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MIN_POOL_DF = 6  # degrees of freedom the arms in contention need before their SD replaces the all-arm one


@dataclass(frozen=True)
class ArmBounds:
    """One arm at one look: its clips, mean and bounds (in "higher is better" units)."""

    n: int
    mean: float
    lower: float
    upper: float


def look_share(look: int) -> float:
    """The share of δ spent at ``look`` (1-based): 1 / (look (look + 1)); the shares sum to 1."""
    if look < 1:
        raise ValueError(f"look must be >= 1, got {look}")
    return 1.0 / (look * (look + 1))


def look_levels(confidence: float, look: int, n_arms: int) -> tuple[float, float]:
    """One-sided error levels (upper bound, lower bound) of every arm at ``look``."""
    delta = (1.0 - confidence) * look_share(look)
    return delta / 2, delta / (2 * max(n_arms - 1, 1))


@lru_cache(maxsize=4096)
def t_quantile(p: float, df: int) -> float:
    """Student-t quantile (cached: a race asks for the same few many times)."""
    from scipy import stats

    return float(stats.t.ppf(p, df))


def pooled_sd(values: Sequence[Sequence[float]]) -> tuple[float, int]:
    """The SD pooled over arms (deviations from each arm's own mean) and its degrees of freedom."""
    ss, df = 0.0, 0
    for arm in values:
        if len(arm) >= 2:
            x = np.asarray(arm, dtype=np.float64)
            ss += float(((x - x.mean()) ** 2).sum())
            df += len(x) - 1
    return (math.sqrt(ss / df) if df else math.nan), df


def arm_bounds(
    values: Sequence[Sequence[float]], confidence: float, look: int, pool: Sequence[int] | None = None
) -> list[ArmBounds]:
    """Every arm's bounds at ``look`` (values in "higher is better" units; an arm with no value: ±inf).

    ``pool``: the arms whose spread gives the SD (default: all of them)."""
    sd, df = pooled_sd(values if pool is None else [values[i] for i in pool])
    alpha_up, alpha_low = look_levels(confidence, look, len(values))
    q_up = t_quantile(1 - alpha_up, df) if df else math.inf
    q_low = t_quantile(1 - alpha_low, df) if df else math.inf
    out = []
    for arm in values:
        n = len(arm)
        if n == 0:
            out.append(ArmBounds(0, math.nan, -math.inf, math.inf))
            continue
        mean = float(np.mean(arm))
        se = sd / math.sqrt(n) if df else math.inf
        # 0 · inf is nan: an arm whose values are all equal in a race with no spread has zero-width bounds
        out.append(ArmBounds(n, mean, mean - (q_low * se if se else 0.0), mean + (q_up * se if se else 0.0)))
    return out


def separation_confidence(
    values: Sequence[Sequence[float]],
    leader: int,
    contenders: Sequence[int],
    look: int,
    ceiling: float,
    pool: Sequence[int] | None = None,
) -> float:
    """The highest confidence (≤ ``ceiling``) at which this look would eliminate every contender.

    Found by bisection on the confidence, with the same bounds and union bound as the race
    (0 when even 50 % does not separate them)."""
    if not contenders:
        return ceiling

    def separated(confidence: float) -> bool:
        bounds = arm_bounds(values, confidence, look, pool)
        return all(bounds[j].upper < bounds[leader].lower for j in contenders)

    lo, hi = 0.5, ceiling
    if separated(hi):
        return hi
    if not separated(lo):
        return 0.0
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if separated(mid) else (lo, mid)
    return lo


__all__ = [
    "MIN_POOL_DF",
    "ArmBounds",
    "arm_bounds",
    "look_levels",
    "look_share",
    "pooled_sd",
    "separation_confidence",
    "t_quantile",
]
