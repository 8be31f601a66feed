"""The stratified permutation test: labellings, exactness, floors, and the two sums of squares."""

import math

import numpy as np
import pytest

from kling_lab.stats.permutation import DistanceSS, Labels, ScalarSS, permutation_test


def labels(level, stratum=None) -> Labels:
    level = np.asarray(level, dtype=np.int64)
    stratum = np.zeros_like(level) if stratum is None else np.asarray(stratum, dtype=np.int64)
    return Labels(level, stratum, int(level.max() + 1), int(stratum.max() + 1))


def test_every_distinct_labelling_once_and_only_within_strata():
    design = labels([0, 0, 1, 1, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1, 1, 1, 1])
    rows = np.concatenate(list(design.all_labellings(block=7)))
    assert len(rows) == len({tuple(r) for r in rows}) == design.arrangements() == math.comb(4, 2) * math.comb(5, 2)
    second = design.stratum == 1
    assert (np.sort(rows[:, second], axis=1) == [0, 0, 1, 1, 1]).all()
    shuffled = np.concatenate(list(design.shuffles(300, np.random.default_rng(0), block=64)))
    assert shuffled.shape == (300, 9) and {tuple(r) for r in shuffled} <= {tuple(r) for r in rows}


def test_the_floor_counts_label_swaps_of_equal_cells():
    assert labels([0] * 4 + [1] * 4).min_p() == pytest.approx(2 / 70)
    assert labels([0, 0, 1, 1, 2, 2]).min_p() == pytest.approx(6 / 90)
    assert labels([0, 0, 0, 1, 1]).min_p() == pytest.approx(1 / 10)


def test_a_clean_separation_sits_exactly_on_the_floor():
    design = labels([0] * 4 + [1] * 4)
    test = permutation_test(ScalarSS(np.array([1.0, 1.1, 0.9, 1.05, 5.0, 5.1, 4.9, 5.2])), design)
    assert test.exact and test.n_permutations == 70 and test.p_value == pytest.approx(2 / 70)
    assert test.df_between == 1 and test.df_within == 6 and test.statistic > 1000


def test_random_shuffles_when_the_design_is_large():
    rng = np.random.default_rng(0)
    design = labels(np.repeat([0, 1, 2], 6))
    test = permutation_test(ScalarSS(rng.normal(size=18)), design, n_permutations=999, seed=1)
    assert not test.exact and test.n_permutations == 999 and 0 < test.p_value <= 1
    flat = permutation_test(ScalarSS(np.full(18, 3.0)), design, n_permutations=10)
    assert flat.p_value == 1.0 and math.isnan(flat.statistic)  # no variation at all: nothing to explain


def test_distances_of_one_number_give_the_anova():
    x = np.array([0.3, 1.2, 0.8, 2.5, 2.2, 3.1, 0.1, 2.9])
    design = labels([0, 0, 0, 1, 1, 1, 0, 1], [0, 0, 1, 0, 0, 1, 1, 1])
    scalar = permutation_test(ScalarSS(x), design)
    distance = permutation_test(DistanceSS(np.abs(x[:, None] - x[None, :])), design)
    assert distance.ss_cells == pytest.approx(scalar.ss_cells) and distance.ss_strata == pytest.approx(scalar.ss_strata)
    assert distance.p_value == pytest.approx(scalar.p_value) and distance.statistic == pytest.approx(scalar.statistic)
