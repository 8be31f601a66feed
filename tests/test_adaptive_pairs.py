"""Adaptive A/B statistics: the Bradley–Terry fit, separation decided only at looks, and the pair with
the most expected information among the arms in contention."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from kling_lab.stats.adaptive_pairs import (
    LOOKS,
    choose_pair,
    fit,
    information,
    last_look,
    look_number,
    separation,
    tallies,
    votes_to_separate,
)
from kling_lab.stats.winrates import bradley_terry


def simulated(theta, votes, rng, pairs=None):
    k = len(theta)
    pairs = pairs or list(itertools.combinations(range(k), 2))
    left, right, score = [], [], []
    for _ in range(votes):
        i, j = pairs[rng.integers(len(pairs))]
        left.append(i)
        right.append(j)
        score.append(float(rng.random() < 1 / (1 + math.exp(-(theta[i] - theta[j])))))
    return tallies(k, left, right, score)


def test_the_fit_agrees_with_the_mm_fit_of_win_rates():
    wins, counts = simulated([0.0, -0.7, -1.5, 0.3], 400, np.random.default_rng(0))
    model = fit(wins, counts)
    mm = np.log(bradley_terry(wins, counts, prior=0.5))
    assert np.allclose(model.theta, mm - mm.mean(), atol=1e-6)
    assert model.votes == 400 and model.top == 3


def test_laplace_standard_errors_match_the_spread_of_refits():
    theta = np.array([0.0, -0.5, -1.0])
    rng = np.random.default_rng(1)
    fits = [fit(*simulated(theta, 300, rng)) for _ in range(300)]
    spread = np.std([f.theta[0] - f.theta[1] for f in fits])
    predicted = np.median([math.sqrt(f.var_diff(0, 1)) for f in fits])
    assert predicted == pytest.approx(spread, rel=0.15)


def test_looks_grow_by_a_quarter_from_ten_votes():
    assert LOOKS[:6] == (10, 12, 16, 20, 24, 31)
    assert all(b > a for a, b in itertools.pairwise(LOOKS))
    assert look_number(LOOKS[2]) == 3 and look_number(LOOKS[2] + 1) == 0
    assert last_look(LOOKS[2] + 1) == 3 and last_look(5) == 0


def test_separation_is_declared_only_at_a_look():
    wins, counts = simulated([0.0, -3.0, -3.0], LOOKS[8], np.random.default_rng(2))
    model = fit(wins, counts)
    at = separation(model)
    assert at.at_look and at.separated and at.contenders == (0,)
    more_wins, more_counts = simulated([0.0, -3.0, -3.0], 1, np.random.default_rng(3))
    between = separation(fit(wins + more_wins, counts + more_counts))
    assert not between.at_look and not between.separated and between.contenders == (0,)
    assert separation(fit(wins + more_wins, counts + more_counts), decide=False).separated


def test_equal_arms_are_rarely_declared_separated():
    """δ = 0.05 spent over every look: with three equal arms no arm should be declared best, most of the time."""
    rng = np.random.default_rng(4)
    declared = 0
    for _ in range(60):
        wins, counts = np.zeros((3, 3)), np.zeros((3, 3))
        for votes in range(1, 400):
            w, c = simulated([0.0, 0.0, 0.0], 1, rng)
            wins, counts = wins + w, counts + c
            if look_number(votes) and separation(fit(wins, counts)).separated:
                declared += 1
                break
    assert declared / 60 <= 0.05


def test_the_next_pair_is_the_most_uncertain_one_between_contenders():
    wins, counts = simulated([0.0, -0.1, -4.0, -4.0], 200, np.random.default_rng(5))
    model = fit(wins, counts)
    pairs = list(itertools.combinations(range(4), 2))
    contenders = separation(model, decide=False).contenders
    assert set(contenders) == {0, 1}
    assert choose_pair(model, pairs, contenders) == (0, 1)
    assert information(model, 0, 1) > information(model, 0, 2)
    # only pairs between contenders count; with none, the top arm against its rivals
    assert choose_pair(model, [(2, 3), (0, 2)], contenders) == (0, 2)
    assert choose_pair(model, [(2, 3)], contenders) is None
    assert choose_pair(model, [], None) is None


def test_votes_to_separate_grows_as_the_gap_shrinks():
    rng = np.random.default_rng(6)
    wide = votes_to_separate(fit(*simulated([0.0, -1.0, -2.0], 400, rng)))
    narrow = votes_to_separate(fit(*simulated([0.0, -0.3, -2.0], 400, rng)))
    assert wide is not None and narrow is not None and wide < narrow
    assert wide in LOOKS and narrow in LOOKS
