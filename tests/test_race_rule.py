"""The race's statistics without a backend: bounds that hold under repeated looks, the rule's
decisions, the sample-size formulas. Simulations use fixed seeds (deterministic)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kling_lab.errors import InvalidInput
from kling_lab.stats.bounds import arm_bounds, look_levels, look_share, pooled_sd, separation_confidence
from kling_lab.stats.power import power_at, repeats_for_power, repeats_to_pick
from kling_lab.stats.race_rule import RaceRule, decide, default_initial_repeats, permutation_can_reject, simulate


def normal_draw(means, sd, rng):
    return lambda arm, count: means[arm] + sd * rng.standard_normal(count)


def uniform_draw(means, sd, rng):  # the emulator's noise is uniform speed jitter: same SD, no tails
    half = sd * math.sqrt(3)
    return lambda arm, count: means[arm] + rng.uniform(-half, half, count)


# -- bounds ------------------------------------------------------------------------------------
def test_the_looks_spend_exactly_delta():
    assert sum(look_share(r) for r in range(1, 100_000)) == pytest.approx(1.0, abs=1e-4)
    up, low = look_levels(0.95, 1, 12)
    assert up == pytest.approx(0.0125) and low == pytest.approx(0.0125 / 11)
    # one upper bound (the best arm's) and K - 1 lower bounds: δ_r in all
    assert up + 11 * low == pytest.approx(0.05 * look_share(1))


def test_pooled_sd_uses_each_arms_own_mean():
    sd, df = pooled_sd([[1.0, 3.0], [10.0, 12.0], [5.0]])
    assert df == 2 and sd == pytest.approx(math.sqrt(2.0))


def test_bounds_are_student_t_with_the_pooled_sd():
    from scipy import stats

    values = [[1.0, 2.0, 3.0], [4.0, 6.0]]
    b = arm_bounds(values, 0.9, look=2)
    sd, df = pooled_sd(values)
    up, low = look_levels(0.9, 2, 2)
    assert b[0].mean == 2.0 and b[0].n == 3
    assert b[0].upper == pytest.approx(2.0 + stats.t.ppf(1 - up, df) * sd / math.sqrt(3))
    assert b[1].lower == pytest.approx(5.0 - stats.t.ppf(1 - low, df) * sd / math.sqrt(2))


def test_an_arm_without_values_has_no_bounds():
    b = arm_bounds([[1.0, 2.0], []], 0.95, 1)
    assert b[1].n == 0 and b[1].lower == -math.inf and b[1].upper == math.inf


def test_separation_confidence_is_where_the_bounds_stop_overlapping():
    values = [[10.0, 10.2, 9.9, 10.1], [9.0, 9.3, 8.8, 9.1]]
    c = separation_confidence(values, 0, [1], 1, 0.999)
    assert 0.5 < c <= 0.999
    if c < 0.999:
        b = arm_bounds(values, min(c + 1e-6, 0.999), 1)
        assert b[1].upper >= b[0].lower
    b = arm_bounds(values, c - 1e-6, 1)
    assert b[1].upper < b[0].lower
    assert separation_confidence([[1.0, 1.1], [1.0, 1.1]], 0, [1], 1, 0.95) == 0.0


def test_a_look_is_numbered_from_one_and_a_lone_arm_or_pair_spends_all_of_the_lower_share():
    with pytest.raises(ValueError, match="look must be >= 1"):
        look_share(0)
    assert look_share(1) == 0.5
    assert look_levels(0.95, 1, 2) == pytest.approx((0.0125, 0.0125))
    assert look_levels(0.9, 2, 1) == pytest.approx((0.1 / 6 / 2, 0.1 / 6 / 2))


def test_arms_without_spread_have_zero_width_bounds_and_equal_ones_are_never_separated():
    constant = arm_bounds([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]], 0.95, 1)
    assert [(b.lower, b.mean, b.upper) for b in constant] == [(1.0, 1.0, 1.0), (2.0, 2.0, 2.0)]
    assert separation_confidence([[1.0, 1.0], [1.0, 1.0]], 0, [1], 1, 0.95) == 0.0, "touching is not apart"
    assert separation_confidence([[2.0, 2.0], [1.0, 1.0]], 0, [1], 1, 0.95) == 0.95


def test_arms_that_overlap_even_at_50_percent_have_no_separation():
    values = [[1.0, 1.4, 1.2, 0.9], [0.8, 1.3, 1.0, 1.1]]  # apart only at "confidences" below one half
    at_half = arm_bounds(values, 0.5, 1)
    assert at_half[1].upper > at_half[0].lower
    assert separation_confidence(values, 0, [1], 1, 0.95) == 0.0


def test_the_sd_is_pooled_over_the_arms_in_contention_once_they_have_six_degrees_of_freedom():
    rule = RaceRule(higher_is_better=True)
    wild = [0.0, 40.0, -30.0, 25.0]  # ruled out earlier; far noisier than the arms left
    for sizes, own in (((3, 4), False), ((4, 4), True)):  # 5, then 6 degrees of freedom between them
        left = [[10.0, 10.4, 9.7, 10.1][: sizes[0]], [9.9, 10.2, 10.3, 9.8][: sizes[1]]]
        look = decide(rule, [*left, wild], [4, 4, 4], [True, True, False], 2, [None, None, 1])
        expected = pooled_sd(left) if own else pooled_sd([*left, wild])
        assert (look.sd, look.df) == (pytest.approx(expected[0]), expected[1]), sizes


@pytest.mark.parametrize("noise", [normal_draw, uniform_draw])
def test_the_best_arm_survives_the_repeated_looks_at_least_confidence_of_the_time(noise):
    """The union bound's promise, checked where it is tightest: the best arm barely leads 11 others."""
    rng = np.random.default_rng(11)
    means = [0.1] + [0.0] * 11
    rule = RaceRule(higher_is_better=True, confidence=0.8, max_rounds=8)
    trials = 400
    lost = sum(simulate(rule, noise(means, 1.0, rng), 12)[0].eliminated_in[0] is not None for _ in range(trials))
    assert lost / trials <= 1 - rule.confidence


def test_the_race_picks_the_best_at_least_confidence_of_the_time_when_it_leads_by_min_difference():
    rng = np.random.default_rng(5)
    means = np.array([[-3.0 * a - 0.5 * b for b in range(2)] for a in range(6)]).ravel()
    rule = RaceRule(higher_is_better=True, confidence=0.9, min_difference=0.5)
    trials = 300
    wrong = sum(simulate(rule, normal_draw(means, 1.0, rng), 12)[0].leader != 0 for _ in range(trials))
    assert wrong / trials <= 1 - rule.confidence


def test_lower_is_better_is_the_mirror_image():
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    means = [0.0, 1.0, 2.0, 5.0]
    up, _ = simulate(RaceRule(higher_is_better=True, max_repeats=6), normal_draw(means, 1.0, rng_a), 4)
    draw = normal_draw(means, 1.0, rng_b)
    down, _ = simulate(RaceRule(higher_is_better=False, max_repeats=6), lambda arm, n: -draw(arm, n), 4)
    assert up.leader == down.leader == 3
    assert up.eliminated_in == down.eliminated_in
    assert down.bounds[3].lower <= down.bounds[3].mean <= down.bounds[3].upper
    assert down.bounds[3].mean == pytest.approx(-up.bounds[3].mean)


# -- decisions -----------------------------------------------------------------------------------
def test_a_clearly_worse_arm_is_eliminated_and_the_rest_get_more_clips():
    rule = RaceRule(higher_is_better=True)
    assert rule.initial_repeats == 4
    values = [[10.0, 10.1, 9.9, 10.0], [10.05, 9.95, 10.0, 10.1], [0.0, 0.1, 0.2, 0.1]]
    look = decide(rule, values, [4, 4, 4], [True] * 3, 1)
    assert look.alive == (True, True, False) and look.eliminated_in == (None, None, 1)
    assert look.stop is None and look.next_repeats == (4, 4, 0)  # 4 → 8: max(n + 4, ⌈1.5 n⌉)
    assert look.leader == 1


def test_no_separation_on_fewer_clips_than_a_permutation_test_could_back():
    """2 + 2 clips: an exact permutation test (kl.effect) cannot go below p = 1/3, so the race does not
    separate them either, however far apart they are."""
    rule = RaceRule(higher_is_better=True, initial_repeats=2)
    values = [[10.0, 10.1], [10.05, 9.95], [0.0, 0.1]]
    look = decide(rule, values, [2, 2, 2], [True] * 3, 1)
    assert all(look.alive) and look.next_repeats == (2, 2, 2)
    assert not permutation_can_reject(2, 2, 0.05) and not permutation_can_reject(3, 3, 0.05)
    assert permutation_can_reject(3, 4, 0.05) and permutation_can_reject(4, 4, 0.05)
    assert not permutation_can_reject(4, 4, 0.01) and permutation_can_reject(5, 5, 0.01)
    assert [default_initial_repeats(c) for c in (0.9, 0.95, 0.99)] == [3, 4, 5]


def test_decisions_depend_only_on_the_clips_so_a_replay_decides_the_same():
    rng = np.random.default_rng(9)
    values = [list(rng.normal(m, 1.0, 4)) for m in (0.0, 0.3, 2.0, 2.2)]
    rule = RaceRule(higher_is_better=True, min_difference=0.5)
    first = decide(rule, values, [4] * 4, [True] * 4, 2)
    again = decide(rule, [list(v) for v in values], [4] * 4, [True] * 4, 2)
    assert first == again


def test_the_cap_stops_the_race_and_counts_planned_clips_not_ok_ones():
    rule = RaceRule(higher_is_better=True, initial_repeats=2, max_repeats=4)
    values = [[1.0, 1.1, 0.9], [1.0, 0.95, 1.05, 1.0]]  # arm 0: one clip failed
    look = decide(rule, values, [4, 4], [True, True], 2)
    assert look.stop == "cap" and look.cap == 4 and look.next_repeats == (0, 0)


def test_the_cap_from_min_difference_grows_with_the_rivals_left():
    rule = RaceRule(higher_is_better=True, min_difference=1.0)
    two, five = rule.cap(1.0, 20, 2), rule.cap(1.0, 20, 5)
    assert two == repeats_to_pick(1.0, 1.0, 0.975) and five == repeats_to_pick(1.0, 1.0, 1 - 0.025 / 4)
    assert five is not None and two is not None and five > two
    assert RaceRule(higher_is_better=True).cap(1.0, 20, 2) is None


def test_an_arm_whose_clips_all_failed_is_dropped():
    rule = RaceRule(higher_is_better=True)
    look = decide(rule, [[1.0, 1.2, 1.1, 1.0], [], [0.9, 1.1, 1.0, 1.0]], [4, 4, 4], [True] * 3, 1)
    assert look.alive[1] is False and look.eliminated_in[1] == 1


def test_max_rounds_ends_a_race_between_equal_arms():
    rng = np.random.default_rng(1)
    look, clips = simulate(RaceRule(higher_is_better=True, max_rounds=3), normal_draw([0, 0, 0], 1, rng), 3)
    assert look.stop == "max_rounds" and look.round == 3
    assert clips == 3 * 12  # 4 → 8 → 12
    assert 0 <= look.separation < 0.95


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"higher_is_better": None}, "higher_is_better"),
        ({"higher_is_better": True, "confidence": 0.5}, "confidence must be a number between 0.5 and 1"),
        ({"higher_is_better": True, "confidence": 1.0}, "confidence"),
        ({"higher_is_better": True, "confidence": "high"}, "confidence"),
        ({"higher_is_better": True, "initial_repeats": 1}, "initial_repeats must be an integer >= 2"),
        ({"higher_is_better": True, "max_repeats": 2, "initial_repeats": 3}, "smaller than initial_repeats"),
        ({"higher_is_better": True, "min_difference": 0}, "min_difference must be a number > 0"),
        ({"higher_is_better": True, "max_rounds": 0}, "max_rounds"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(InvalidInput, match=message) as err:
        RaceRule(**kwargs)
    assert "\n" not in str(err.value)


def test_one_arm_is_not_a_race():
    with pytest.raises(InvalidInput, match="at least two arms"):
        RaceRule(higher_is_better=True).first_round(1)


# -- sample sizes --------------------------------------------------------------------------------
def test_repeats_for_power_matches_the_textbook():
    # Cohen: d = 0.5 needs 64 per group for power 0.8 at α 0.05 (two-sided t-test)
    assert repeats_for_power(1.0, 0.5, power=0.8, alpha=0.05) == 64
    assert power_at(64, 1.0, 0.5) >= 0.8 > power_at(63, 1.0, 0.5)
    assert repeats_for_power(2.0, 1.0) == 64  # only d / σ matters
    assert repeats_for_power(0.0, 1.0) == 2


def test_repeats_to_pick_is_the_normal_selection_rule():
    n = repeats_to_pick(1.0, 0.5, 0.95)
    assert n == math.ceil(2 * (1.6448536 / 0.5) ** 2)
    rng = np.random.default_rng(0)
    picked = (rng.normal(0.5, 1 / math.sqrt(n), 20000) > rng.normal(0.0, 1 / math.sqrt(n), 20000)).mean()
    assert picked >= 0.945


# -- the rule's own arithmetic, pinned (mutation survivors) -------------------------------------
def test_a_cap_of_either_kind_gives_half_of_delta_to_the_eliminations():
    assert not RaceRule(True, confidence=0.9).capped
    assert RaceRule(True, confidence=0.9).elimination_confidence == pytest.approx(0.9)
    for capped in (RaceRule(True, confidence=0.9, max_repeats=8), RaceRule(True, confidence=0.9, min_difference=0.1)):
        assert capped.capped
        assert capped.elimination_confidence == pytest.approx(0.95)


def test_each_round_grows_an_arm_by_half_or_by_the_first_round_whichever_is_more_never_past_the_cap():
    rule = RaceRule(True)  # initial_repeats 4
    assert [rule.next_total(n, None) for n in (4, 8, 12, 18)] == [8, 12, 18, 27]
    assert rule.next_total(12, 15) == 15
    assert rule.next_total(20, 15) == 20, "an arm already past the cap keeps what it has"


def test_the_cap_needs_a_measured_sd():
    rule = RaceRule(True, confidence=0.9, min_difference=0.5)
    assert rule.cap(1.0, 0, 2) is None
    assert rule.cap(math.nan, 5, 2) is None
    assert rule.cap(1.0, 1, 2) == max(4, repeats_to_pick(1.0, 0.5, 1 - 0.1 / 2))
    assert rule.cap(1.0, 1, 3) == max(4, repeats_to_pick(1.0, 0.5, 1 - 0.1 / 2 / 2)), "Bonferroni over the rivals"
    assert RaceRule(True, max_repeats=9).cap(math.nan, 0, 5) == 9


def test_the_default_initial_repeats_is_the_fewest_that_can_separate():
    assert default_initial_repeats(0.6) == 2  # 2 + 2 clips: p >= 1/3, enough at 40 %
    assert default_initial_repeats(0.95) == 4
    assert default_initial_repeats(0.99) == 5
    assert not permutation_can_reject(2, 3, 0.05), "1 / C(5, 2) = 0.1"
    assert permutation_can_reject(2, 3, 0.1)
    assert not permutation_can_reject(3, 3, 0.05), "2 / C(6, 3) = 0.1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_repeats": 2.5}, "initial_repeats must be an integer >= 2"),
        ({"max_repeats": 1}, "max_repeats must be an integer >= 2"),
        ({"max_rounds": True}, "max_rounds must be an integer >= 1"),
        ({"min_difference": True}, "min_difference must be a number > 0"),
        ({"min_difference": math.inf}, "min_difference must be a number > 0"),
        ({"min_difference": "0.1"}, "min_difference must be a number > 0"),
        ({"min_difference": 0.0}, "min_difference must be a number > 0"),
    ],
)
def test_bad_rule_settings_are_refused_with_their_name(kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        RaceRule(True, **kwargs)


def test_the_smallest_settings_are_accepted():
    rule = RaceRule(True, initial_repeats=4, max_repeats=4, max_rounds=1)
    assert (rule.initial_repeats, rule.max_repeats, rule.max_rounds) == (4, 4, 1)
    assert decide(rule, [[1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.5, 4.5]], [4, 4], [True, True], 1).stop == "cap"


def test_the_race_stops_at_round_ten_by_default():
    values = [[1.0, 1.4, 1.2, 0.9], [0.8, 1.3, 1.0, 1.1]]  # never separated
    assert decide(RaceRule(True), values, [4, 4], [True, True], 9).stop is None
    assert decide(RaceRule(True), values, [4, 4], [True, True], 10).stop == "max_rounds"


def test_lower_is_better_shows_bounds_in_the_metrics_own_units():
    values = [[1.0, 1.2, 0.9, 1.1], [5.0, 5.3, 4.8, 5.1]]
    look = decide(RaceRule(False), values, [4, 4], [True, True], 1)
    for arm, b in zip(values, look.bounds, strict=True):
        assert b.lower < b.mean < b.upper and b.mean == pytest.approx(np.mean(arm))
    assert look.leader == 0 and look.alive == (True, False) and look.stop == "separated"
    higher = decide(RaceRule(True), values, [4, 4], [True, True], 1)
    flat = [x for b in look.bounds for x in (b.lower, b.upper)]
    assert [x for b in higher.bounds for x in (b.lower, b.upper)] == pytest.approx(flat)
    assert higher.leader == 1


def test_two_arms_far_apart_are_separated_at_the_first_look():
    look = decide(RaceRule(True), [[10.0, 10.1, 9.9, 10.05], [1.0, 1.1, 0.9, 1.05]], [4, 4], [True, True], 1)
    assert (look.stop, look.leader, look.alive, look.eliminated_in) == ("separated", 0, (True, False), (None, 1))
    assert look.next_repeats == (0, 0)
    assert look.separation >= 0.95


def test_equal_arms_are_never_eliminated_and_the_first_leads_on_a_tie():
    look = decide(RaceRule(True), [[1.0] * 4, [1.0] * 4, [1.0] * 4], [4, 4, 4], [True, True, True], 1)
    assert look.alive == (True, True, True) and look.leader == 0 and look.stop is None
    assert look.next_repeats == (4, 4, 4)


def test_an_arm_still_owed_clips_is_not_the_leader_before_it_has_any():
    values = [[], [1.0, 1.2, 0.9, 1.1], [0.5, 0.7, 0.4, 0.6]]
    look = decide(RaceRule(True, initial_repeats=4), values, [2, 4, 4], [True, True, True], 1)
    assert look.alive[0] and look.leader == 1


def test_one_measured_arm_left_is_separated_and_none_is_unmeasured():
    rule = RaceRule(True, max_repeats=8)
    values = [[9.0, 9.1, 9.2, 9.3], [1.0, 1.2, 0.9, 1.1], []]  # arm 0 was ruled out earlier; arm 2 gave nothing
    look = decide(rule, values, [4, 4, 4], [False, True, True], 2, [1, None, None])
    assert (look.stop, look.leader, look.cap) == ("separated", 1, None)
    assert look.alive == (False, True, False) and look.eliminated_in == (1, None, 2)
    assert look.next_repeats == (0, 0, 0)
    assert look.separation == rule.elimination_confidence
    nothing = decide(rule, [[], [], []], [4, 4, 4], [True, True, True], 1)
    assert (nothing.stop, nothing.leader, nothing.next_repeats) == ("unmeasured", 0, (0, 0, 0))


def test_within_difference_includes_the_difference_itself():
    values = [[1.0, 1.4, 1.2, 0.9], [0.8, 1.3, 1.0, 1.1]]
    probe = decide(RaceRule(True, min_difference=10.0), values, [4, 4], [True, True], 1)
    gap = probe.bounds[1].upper - probe.bounds[0].lower
    assert probe.leader == 0 and gap > 0
    exact = decide(RaceRule(True, min_difference=gap), values, [4, 4], [True, True], 1)
    assert exact.stop == "within_difference"
    assert decide(RaceRule(True, min_difference=gap * 0.999), values, [4, 4], [True, True], 1).stop != (
        "within_difference"
    )
