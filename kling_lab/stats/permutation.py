"""A stratified permutation test of group labels: PERMANOVA's pseudo-F (the ANOVA F for one number per run).

Each run has a *setting* (its label, ``0 … n_levels−1``) and a *stratum*; a *cell* is one setting in
one stratum. With ``d_ij`` the difference between runs ``i`` and ``j`` and ``SS(G) = Σ_groups
Σ_{i<j in group} d_ij² / n_group``::

    F = ((SS(strata) − SS(cells)) / df_between) / (SS(cells) / df_within)

The null distribution comes from shuffling the labels within each stratum. SS(strata) is the same
for every shuffle, so "F_perm ≥ F" is "SS_perm(cells) ≤ SS(cells)". When the design has at most
``n_permutations`` distinct labellings each is used once and the test is exact
(``p = #{F_perm ≥ F} / #labellings``); otherwise ``p = (1 + #{F_perm ≥ F}) / (1 + N)`` over N
random shuffles.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Ids = NDArray[np.int64]


@dataclass(frozen=True)
class Labels:
    """Each run's setting and stratum (both 0-based ids)."""

    level: Ids
    stratum: Ids
    n_levels: int
    n_strata: int

    @property
    def n_cells(self) -> int:
        return self.n_strata * self.n_levels

    def cells(self, labelling: Ids) -> Ids:
        """Cell ids (stratum × setting) of one labelling, or of each row of a block of them."""
        return self.stratum * self.n_levels + labelling

    def degrees_of_freedom(self) -> tuple[int, int]:
        """(between settings within strata, between runs within cells)."""
        between = sum(len(np.unique(self.level[self.stratum == s])) - 1 for s in range(self.n_strata))
        return between, len(self.level) - len(np.unique(self.cells(self.level)))

    def arrangements(self) -> int:
        """How many distinct labellings shuffling within strata can produce (a product of multinomials)."""
        total = 1
        for s in range(self.n_strata):
            counts = np.bincount(self.level[self.stratum == s])
            ways = math.factorial(int(counts.sum()))
            for c in counts:
                ways //= math.factorial(int(c))
            total *= ways
        return total

    def min_p(self) -> float:
        """The smallest p the design allows: swapping the settings of equally large cells of a stratum
        leaves F unchanged, so the most extreme labelling has that many twins (2 / 70 for 2 × 4 runs)."""
        twins = 1
        for s in range(self.n_strata):
            sizes = np.bincount(self.level[self.stratum == s])
            for multiplicity in np.unique(sizes[sizes > 0], return_counts=True)[1]:
                twins *= math.factorial(int(multiplicity))
        return twins / self.arrangements()

    def shuffles(self, m: int, rng: np.random.Generator, block: int = 256) -> Iterator[Ids]:
        """``m`` random labellings, each shuffled independently within every stratum, in blocks of rows."""
        for size in [min(block, m - start) for start in range(0, m, block)]:
            out = np.tile(self.level, (size, 1))
            for s in range(self.n_strata):
                idx = np.flatnonzero(self.stratum == s)
                out[:, idx] = rng.permuted(out[:, idx], axis=1)
            yield out

    def all_labellings(self, block: int = 256) -> Iterator[Ids]:
        """Every distinct labelling once (the product of each stratum's orderings), in blocks of rows."""
        per_stratum = [
            (np.flatnonzero(self.stratum == s), _distinct_orders(self.level[self.stratum == s]))
            for s in range(self.n_strata)
        ]
        combos = itertools.product(*(orders for _, orders in per_stratum))
        while chunk := list(itertools.islice(combos, block)):
            out = np.empty((len(chunk), len(self.level)), dtype=np.int64)
            for (idx, _), column in zip(per_stratum, zip(*chunk)):
                out[:, idx] = np.array(column)
            yield out


def _distinct_orders(labels: Ids) -> list[tuple[int, ...]]:
    """Each distinct ordering of the multiset ``labels`` once."""
    values, counts = np.unique(labels, return_counts=True)
    orders: list[tuple[int, ...]] = []

    def place(free: tuple[int, ...], k: int, current: list[int]) -> None:
        if k == len(values) - 1:
            for i in free:
                current[i] = int(values[k])
            orders.append(tuple(current))
            return
        for chosen in itertools.combinations(free, int(counts[k])):
            for i in chosen:
                current[i] = int(values[k])
            place(tuple(i for i in free if i not in chosen), k + 1, current)

    place(tuple(range(len(labels))), 0, [0] * len(labels))
    return orders


class ScalarSS:
    """SS for one number per run: Σ_groups Σ (x − group mean)², for each row of group ids."""

    def __init__(self, x: NDArray[np.float64]) -> None:
        self.x = x - x.mean()  # centred: less cancellation in Σx² − Σ S²/n
        self.total = float((self.x**2).sum())

    def __call__(self, groups: Ids, n_groups: int) -> NDArray[np.float64]:
        m = len(groups)
        flat = (groups + np.arange(m)[:, None] * n_groups).ravel()
        sums = np.bincount(flat, weights=np.tile(self.x, m), minlength=m * n_groups).reshape(m, n_groups)
        counts = np.bincount(flat, minlength=m * n_groups).reshape(m, n_groups)
        return self.total - (sums**2 / np.maximum(counts, 1)).sum(axis=1)


class DistanceSS:
    """SS from a distance matrix: Σ_groups Σ_{i<j in group} d_ij² / n_group, for each row of group ids."""

    def __init__(self, distances: NDArray[np.float64]) -> None:
        self.d2 = distances**2

    def __call__(self, groups: Ids, n_groups: int) -> NDArray[np.float64]:
        onehot = (groups[:, :, None] == np.arange(n_groups)).astype(np.float64)  # (m, n, groups)
        pair_sums = (onehot * np.matmul(self.d2, onehot)).sum(axis=1)  # ordered pairs: twice Σ_{i<j}
        return (pair_sums / (2 * np.maximum(onehot.sum(axis=1), 1))).sum(axis=1)


SumOfSquares = ScalarSS | DistanceSS


@dataclass(frozen=True)
class PermutationResult:
    """The pseudo-F, its p-value and the sums of squares behind them."""

    statistic: float
    p_value: float
    n_permutations: int  # labellings compared: all of them when ``exact``
    exact: bool
    ss_strata: float  # total variation within strata
    ss_cells: float  # variation between runs of one cell
    df_between: int
    df_within: int


def permutation_test(ss: SumOfSquares, labels: Labels, n_permutations: int = 5000, seed: int = 0) -> PermutationResult:
    """Test whether the settings explain more of the variation within strata than shuffled settings do."""
    ss_strata = float(ss(labels.stratum[None, :], labels.n_strata)[0])
    ss_cells = float(ss(labels.cells(labels.level)[None, :], labels.n_cells)[0])
    df_between, df_within = labels.degrees_of_freedom()
    tolerance = 1e-9 * max(ss_strata, 1e-300)  # rounding, relative to the total

    def hits(labellings: Iterator[Ids]) -> int:
        return sum(int((ss(labels.cells(block), labels.n_cells) <= ss_cells + tolerance).sum()) for block in labellings)

    arrangements = labels.arrangements()
    if arrangements <= n_permutations:  # every distinct labelling once, the observed one included
        p, used, exact = hits(labels.all_labellings()) / arrangements, arrangements, True
    else:
        shuffles = labels.shuffles(n_permutations, np.random.default_rng(seed))
        p, used, exact = (1 + hits(shuffles)) / (1 + n_permutations), n_permutations, False
    return PermutationResult(
        statistic=_pseudo_f(ss_strata, ss_cells, df_between, df_within),
        p_value=p if ss_strata > 0 else 1.0,
        n_permutations=used,
        exact=exact,
        ss_strata=ss_strata,
        ss_cells=ss_cells,
        df_between=df_between,
        df_within=df_within,
    )


def _pseudo_f(ss_strata: float, ss_cells: float, df_between: int, df_within: int) -> float:
    if ss_cells <= 0:
        return math.inf if ss_strata > 0 else math.nan
    return ((ss_strata - ss_cells) / df_between) / (ss_cells / df_within)


__all__ = ["DistanceSS", "Labels", "PermutationResult", "ScalarSS", "SumOfSquares", "permutation_test"]
