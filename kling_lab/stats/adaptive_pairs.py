"""Adaptive A/B: which pair to show next, and when the top arm is separated (Bradley–Terry).

**Model.** P(i beats j) = σ(θ_i − θ_j) (Bradley–Terry on log-strengths θ, centred to mean 0); a tie
or "both bad" is half a win each, as in :mod:`kling_lab.stats.winrates`, and ``prior`` pseudo-ties
between every pair keep the fit finite. θ is fitted by Newton's method; its uncertainty is the
Laplace approximation: covariance ``Σ = H⁺`` with ``H`` the Fisher information (a graph Laplacian
with weights ``n_ij p_ij (1 − p_ij)``).

**Separated.** The top arm (highest θ) is separated when, for every other arm ``j``, the signed root of
the likelihood-ratio statistic for ``θ_top = θ_j`` exceeds ``z`` (:func:`signed_root`; a Wald test
``Δθ / SE`` would never separate an arm that wins every vote, since its SE grows with the gap). A voter may stop at any vote, so the check is made at *looks*
(:data:`LOOKS`: 10, 12, 16, 20, … votes, each 1.25× the last) and spends ``δ = 1 − confidence`` like
a race does (:mod:`kling_lab.stats.bounds`): look ``r`` gets ``δ / (r (r + 1))``, split over the
``K − 1`` rivals (one-sided), so P(ever declaring a wrong top arm separated) ≤ δ (Laplace approximation).

**Next pair: expected information.** A vote between ``i`` and ``j`` is worth
``½ log(1 + p (1 − p) · Var(θ_i − θ_j))`` nats about θ (the Gaussian posterior's entropy drop for one
logistic observation): largest when the outcome is most uncertain (p near ½) *and* the two arms'
difference is least known. Only pairs between arms still in contention (not yet ruled out against
the top arm at the current look's level) are candidates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

FIRST_LOOK = 10
LOOK_GROWTH = 1.25
SCORES = {"left": 1.0, "right": 0.0, "tie": 0.5, "both_bad": 0.5}


@lru_cache(maxsize=1)
def _looks() -> tuple[int, ...]:
    looks: list[int] = []
    x = float(FIRST_LOOK)
    while len(looks) < 200:
        n = round(x)
        if not looks or n > looks[-1]:
            looks.append(n)
        x *= LOOK_GROWTH
    return tuple(looks)


LOOKS = _looks()


def look_number(votes: int) -> int:
    """The look a vote count falls on (1-based), or 0 between looks."""
    import bisect

    i = bisect.bisect_left(LOOKS, votes)
    return i + 1 if i < len(LOOKS) and LOOKS[i] == votes else 0


def last_look(votes: int) -> int:
    """The latest look at or before ``votes`` (0 before the first)."""
    import bisect

    return bisect.bisect_right(LOOKS, votes)


@dataclass(frozen=True)
class BTFit:
    """A Bradley–Terry fit: log-strengths (mean 0) and their Laplace covariance."""

    arms: tuple[str, ...]
    theta: NDArray[np.float64]
    cov: NDArray[np.float64]
    votes: int
    w: NDArray[np.float64]  # wins, prior included
    n: NDArray[np.float64]  # comparisons, prior included

    def p(self, i: int, j: int) -> float:
        return float(1 / (1 + math.exp(-(self.theta[i] - self.theta[j]))))

    def var_diff(self, i: int, j: int) -> float:
        return float(self.cov[i, i] + self.cov[j, j] - 2 * self.cov[i, j])

    @property
    def top(self) -> int:
        return int(np.argmax(self.theta))


def tallies(k: int, left: Sequence[int], right: Sequence[int], score: Sequence[float]):
    """Win and comparison count matrices from votes (``score``: left's share, 1 / ½ / 0)."""
    wins = np.zeros((k, k))
    counts = np.zeros((k, k))
    np.add.at(wins, (np.asarray(left), np.asarray(right)), np.asarray(score, dtype=float))
    np.add.at(wins, (np.asarray(right), np.asarray(left)), 1 - np.asarray(score, dtype=float))
    np.add.at(counts, (np.asarray(left), np.asarray(right)), 1.0)
    counts = counts + counts.T
    return wins, counts


def fit(
    wins: NDArray[np.float64],
    counts: NDArray[np.float64],
    arms: Sequence[str] | None = None,
    *,
    prior: float = 0.5,
    start: NDArray[np.float64] | None = None,
) -> BTFit:
    """Fit θ from win / count matrices (Newton's method, warm-startable) with its Laplace covariance."""
    k = len(wins)
    off = 1.0 - np.eye(k)
    w = wins + prior / 2 * off
    n = counts + prior * off
    theta = _newton(w, n, np.zeros(k) if start is None else np.array(start, dtype=float))
    p = 1 / (1 + np.exp(-(theta[:, None] - theta[None, :])))
    ones = np.full((k, k), 1.0 / k)  # pins the free direction (θ + c): (H + 11ᵀ/k)⁻¹ − 11ᵀ/k = H⁺
    cov = np.linalg.inv(_laplacian(n * p * (1 - p)) + ones) - ones
    labels = tuple(arms) if arms is not None else tuple(str(i) for i in range(k))
    return BTFit(labels, theta, cov, round(float(counts.sum()) / 2), w, n)


def _newton(
    w: NDArray[np.float64], n: NDArray[np.float64], theta: NDArray[np.float64], merged: tuple[int, int] | None = None
) -> NDArray[np.float64]:
    """The maximum-likelihood θ (mean 0); with ``merged=(a, b)``, under the constraint θ_a = θ_b."""
    k = len(w)
    basis = np.eye(k)
    if merged is not None:  # θ = B φ: one shared coordinate for a and b
        a, b = merged
        basis = np.delete(basis, b, axis=1)
        basis[b, a if a < b else a - 1] = 1.0
        theta = theta.copy()
        theta[[a, b]] = theta[[a, b]].mean()
    pin = np.full((k, k), 1.0 / k)
    for _ in range(60):
        p = 1 / (1 + np.exp(-(theta[:, None] - theta[None, :])))
        grad = basis.T @ (w - n * p).sum(axis=1)
        hess = basis.T @ (_laplacian(n * p * (1 - p)) + pin) @ basis
        step = basis @ np.linalg.solve(hess, grad)
        theta = theta + step
        theta -= theta.mean()
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta


def _loglik(theta: NDArray[np.float64], w: NDArray[np.float64]) -> float:
    diff = theta[:, None] - theta[None, :]
    return float((w * -np.logaddexp(0.0, -diff)).sum())


def signed_root(model: BTFit, i: int, j: int) -> float:
    """The signed root of the likelihood-ratio statistic for θ_i = θ_j: ``sign(θ̂_i − θ̂_j) √(2 Δℓ)``,
    about N(0, 1) when the two are equal. Unlike ``Δθ̂ / SE`` it does not stall when one arm wins every
    vote (the Wald SE grows with the estimate there: the Hauck–Donner effect)."""
    tied = _newton(model.w, model.n, model.theta, merged=(i, j))
    lr = max(0.0, 2 * (_loglik(model.theta, model.w) - _loglik(tied, model.w)))
    return math.copysign(math.sqrt(lr), float(model.theta[i] - model.theta[j]))


def _laplacian(weights: NDArray[np.float64]) -> NDArray[np.float64]:
    out = -weights.copy()
    np.fill_diagonal(out, 0.0)
    np.fill_diagonal(out, -out.sum(axis=1))
    return out


@lru_cache(maxsize=1024)
def z_at(confidence: float, look: int, n_arms: int) -> float:
    """The one-sided z of each rival comparison at ``look`` (union bound over looks and rivals)."""
    from scipy import stats

    delta = (1 - confidence) / (look * (look + 1)) / max(n_arms - 1, 1)
    return float(stats.norm.isf(delta))


@dataclass(frozen=True)
class Separation:
    """Where the top arm stands."""

    top: int
    separated: bool  # only ever True at a look: between looks a stop would not be covered by δ
    contenders: tuple[int, ...]  # the top arm and every arm not ruled out against it
    look: int  # the look whose level was used (0: before the first look)
    at_look: bool  # the vote count is a look
    z: float


def separation(model: BTFit, confidence: float = 0.95, *, decide: bool = True) -> Separation:
    """Is the top arm separated from every other arm? Decided at looks only: between looks the
    contenders (for choosing pairs) use the last look's level and ``separated`` is False, unless
    ``decide=False`` (a report, e.g. a plan: the current votes at the last look's level)."""
    at = look_number(model.votes) or (0 if decide else last_look(model.votes))
    look = at or last_look(model.votes)
    k = len(model.theta)
    top = model.top
    if look < 1:
        return Separation(top, False, tuple(range(k)), 0, False, math.inf)
    z = z_at(confidence, look, k)
    contenders = [top] + [j for j in range(k) if j != top and signed_root(model, top, j) <= z]
    return Separation(top, bool(at) and len(contenders) == 1, tuple(sorted(contenders)), look, bool(at), z)


def information(model: BTFit, i: int, j: int) -> float:
    """Expected information (nats) of one vote between arms ``i`` and ``j``."""
    p = model.p(i, j)
    return 0.5 * math.log1p(p * (1 - p) * model.var_diff(i, j))


def choose_pair(
    model: BTFit, candidates: Iterable[tuple[int, int]], contenders: Sequence[int] | None = None
) -> tuple[int, int] | None:
    """The candidate pair (arm indexes) with the most expected information, among pairs of two arms in
    contention (``contenders``; default: every arm); failing that, pairs with one arm in contention
    (the top arm against its nearest rival once it stands alone); None when there is no candidate."""
    pairs = [(i, j) for i, j in candidates if i != j]
    keep = set(range(len(model.theta)) if contenders is None else contenders)
    for allowed in ([p for p in pairs if p[0] in keep and p[1] in keep], [p for p in pairs if keep & set(p)]):
        if allowed:
            return max(allowed, key=lambda pair: information(model, *pair))
    return None


def votes_to_separate(model: BTFit, confidence: float = 0.95, max_votes: int = 1_000_000) -> int | None:
    """About how many votes in all (this many so far, more of the same mix) separate the top arm from the
    runner-up: the first look where their likelihood-ratio signed root, growing as √votes, clears ``z``.
    None when the two are tied."""
    if model.votes == 0:
        return None
    top = model.top
    rivals = [j for j in range(len(model.theta)) if j != top]
    runner_up = max(rivals, key=lambda j: model.theta[j])
    root = signed_root(model, top, runner_up)
    if root <= 0:
        return None
    for r, votes in enumerate(LOOKS, start=1):
        if votes > max_votes:
            return None
        if votes >= model.votes and root * math.sqrt(votes / model.votes) > z_at(confidence, r, len(model.theta)):
            return votes
    return None


__all__ = [
    "LOOKS",
    "SCORES",
    "BTFit",
    "Separation",
    "choose_pair",
    "fit",
    "information",
    "last_look",
    "look_number",
    "separation",
    "signed_root",
    "tallies",
    "votes_to_separate",
    "z_at",
]
