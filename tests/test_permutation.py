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


def shuffle_hits(x: np.ndarray, design: Labels, n: int, seed: int) -> int:
    """Shuffles (the test's own, same seed) whose cells vary no more than the observed cells:
    F_perm ≥ F, counted here one shuffle at a time."""
    ss = ScalarSS(x)
    observed = ss(design.cells(design.level)[None, :], design.n_cells)[0]
    rows = np.concatenate(list(design.shuffles(n, np.random.default_rng(seed))))
    return sum(int(ss(design.cells(row)[None, :], design.n_cells)[0] <= observed + 1e-9) for row in rows)


def test_random_shuffles_when_the_design_is_large():
    rng = np.random.default_rng(0)
    design = labels(np.repeat([0, 1, 2], 6))
    x = rng.normal(size=18)
    test = permutation_test(ScalarSS(x), design, n_permutations=999, seed=1)
    assert not test.exact and test.n_permutations == 999
    hits = shuffle_hits(x, design, 999, seed=1)
    assert 50 < hits < 999 and test.p_value == (1 + hits) / (1 + 999)  # (1 + hits) / (1 + N)
    flat = permutation_test(ScalarSS(np.full(18, 3.0)), design, n_permutations=10)
    assert flat.p_value == 1.0 and math.isnan(flat.statistic)  # no variation at all: nothing to explain


def test_a_monte_carlo_p_is_never_zero():
    """No shuffle reaches a clean separation of 3 × 6 runs (17 million labellings, 50 drawn), yet
    p counts the observed labelling as one of them: 1 / 51, never 0."""
    design = labels(np.repeat([0, 1, 2], 6))
    x = np.repeat([0.0, 10.0, 20.0], 6) + np.linspace(0, 0.5, 18)
    assert design.arrangements() > 10**7 and shuffle_hits(x, design, 50, seed=3) == 0
    test = permutation_test(ScalarSS(x), design, n_permutations=50, seed=3)
    assert not test.exact and test.p_value == 1 / 51


def test_distances_of_one_number_give_the_anova():
    x = np.array([0.3, 1.2, 0.8, 2.5, 2.2, 3.1, 0.1, 2.9])
    design = labels([0, 0, 0, 1, 1, 1, 0, 1], [0, 0, 1, 0, 0, 1, 1, 1])
    scalar = permutation_test(ScalarSS(x), design)
    distance = permutation_test(DistanceSS(np.abs(x[:, None] - x[None, :])), design)
    assert distance.ss_cells == pytest.approx(scalar.ss_cells) and distance.ss_strata == pytest.approx(scalar.ss_strata)
    assert distance.p_value == pytest.approx(scalar.p_value) and distance.statistic == pytest.approx(scalar.statistic)


def brute_ss(x: np.ndarray, groups: np.ndarray) -> float:
    """Σ over groups of Σ (x − group mean)², one group at a time."""
    return float(sum(((x[groups == g] - x[groups == g].mean()) ** 2).sum() for g in np.unique(groups)))


def test_both_sums_of_squares_match_the_textbook_on_every_labelling_empty_and_single_run_cells_too():
    rng = np.random.default_rng(4)
    x = rng.normal(3.0, 2.0, 7)
    design = labels([0, 1, 2, 2, 0, 0, 3], [0, 0, 0, 0, 1, 1, 1])  # single-run cells; cells empty in a stratum
    rows = np.concatenate(list(design.all_labellings()))
    scalar = ScalarSS(x)(design.cells(rows), design.n_cells)
    distance = DistanceSS(np.abs(x[:, None] - x[None, :]))(design.cells(rows), design.n_cells)
    expected = [brute_ss(x, design.cells(row)) for row in rows]
    assert scalar == pytest.approx(expected) and distance == pytest.approx(expected)
    assert np.isfinite(permutation_test(ScalarSS(x), design).p_value)


def test_the_pseudo_f_is_the_one_way_anova_f():
    from scipy import stats

    groups = [np.array([1.0, 1.4, 0.7, 1.2]), np.array([2.1, 1.8, 2.6]), np.array([0.2, 0.9, 0.4, 0.1, 0.5])]
    x = np.concatenate(groups)
    design = labels(np.repeat([0, 1, 2], [4, 3, 5]))
    test = permutation_test(ScalarSS(x), design, n_permutations=200)
    assert test.df_between == 2 and test.df_within == 9
    assert test.statistic == pytest.approx(stats.f_oneway(*groups).statistic)


def test_the_p_value_does_not_depend_on_the_metrics_offset_or_scale():
    """qc metrics come in any unit: bytes (1e7), seconds, ratios (1e-4)."""
    x = np.array([1.0, 1.6, 0.8, 1.1, 1.9, 1.0, 2.2, 1.4])
    design = labels([0] * 4 + [1] * 4)
    reference = permutation_test(ScalarSS(x), design)
    assert reference.exact and reference.p_value == pytest.approx(16 / 70)
    for y in (x + 1e9, x * 1e-6, x * 1e6, x * 1e-6 + 1e3):
        test = permutation_test(ScalarSS(y), design)
        assert test.p_value == pytest.approx(reference.p_value), y
        assert test.statistic == pytest.approx(reference.statistic, rel=1e-4), y


def test_no_variation_within_cells_is_an_infinite_f_at_any_scale():
    design = labels([0, 0, 1, 1])
    for scale in (1.0, 1e-3):
        test = permutation_test(ScalarSS(np.array([0.0, 0.0, 1.0, 1.0]) * scale), design)
        assert test.statistic == math.inf and test.p_value == pytest.approx(2 / 6)


def test_a_design_with_exactly_as_many_labellings_as_asked_is_enumerated():
    design = labels([0] * 4 + [1] * 4)
    x = np.array([1.0, 1.3, 0.8, 1.1, 1.9, 1.4, 2.2, 1.7])
    assert permutation_test(ScalarSS(x), design, n_permutations=70).exact
    assert not permutation_test(ScalarSS(x), design, n_permutations=69).exact


def test_the_floor_counts_single_runs_and_ignores_settings_a_stratum_lacks():
    assert labels([0, 1, 2, 2]).min_p() == pytest.approx(2 / 12)  # two single-run cells swap
    two_strata = labels([0, 0, 1, 1, 2, 2, 3, 3], [0, 0, 0, 0, 1, 1, 1, 1])  # each stratum lacks two settings
    assert two_strata.arrangements() == 36 and two_strata.min_p() == pytest.approx(4 / 36)
