"""Win rates and Bradley–Terry strengths recover a known ranking; no votes is a message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from kling_lab.plots.winrates import plot_win_rates
from kling_lab.stats.winrates import COLUMNS, NO_VOTES, bradley_terry, win_rates

TRUE = {"weak": 1.0, "mid": 2.0, "strong": 4.0}


def simulate(n: int, seed: int, tie_margin: float = 0.0) -> pd.DataFrame:
    """Votes on random pairs of arms, decided by Bradley–Terry with the TRUE strengths."""
    rng = np.random.default_rng(seed)
    arms = list(TRUE)
    rows = []
    for _ in range(n):
        a, b = rng.choice(arms, 2, replace=False)
        p_left = TRUE[a] / (TRUE[a] + TRUE[b])
        u = rng.random()
        choice = "tie" if abs(u - p_left) < tie_margin else ("left" if u < p_left else "right")
        rows.append({"by": "negative_prompt", "left_arm": a, "right_arm": b, "choice": choice})
    return pd.DataFrame(rows)


def test_recovers_the_true_order_and_strengths():
    table = win_rates(simulate(400, seed=7), n_boot=1000, seed=0)
    assert list(table["arm"]) == ["strong", "mid", "weak"]
    truth = {arm: s / sum(TRUE.values()) for arm, s in TRUE.items()}  # 1/7, 2/7, 4/7
    for row in table.itertuples():
        assert row.strength_low <= truth[row.arm] <= row.strength_high, row
        assert row.win_rate_low <= row.win_rate <= row.win_rate_high
    assert table["strength"].sum() == pytest.approx(1.0)
    assert (table["n"] == table["wins"] + table["losses"] + table["ties"]).all()


def test_bootstrap_is_seedable():
    votes = simulate(100, seed=1)
    assert win_rates(votes, seed=5).equals(win_rates(votes, seed=5))


def test_ties_and_both_bad_count_half():
    votes = pd.DataFrame(
        {"by": "x", "left_arm": ["a", "a", "b"], "right_arm": ["b", "b", "a"], "choice": ["left", "tie", "both_bad"]}
    )
    table = win_rates(votes, n_boot=50).set_index("arm")
    assert table.loc["a", "wins"] == 1 and table.loc["a", "ties"] == 2 and table.loc["a", "both_bad"] == 1
    assert table.loc["a", "win_rate"] == pytest.approx((1 + 1) / 3)
    assert table.loc["b", "win_rate"] == pytest.approx(1 / 3)


def test_mm_matches_the_closed_form_for_two_arms():
    wins = np.array([[0.0, 30.0], [10.0, 0.0]])
    counts = np.array([[0.0, 40.0], [40.0, 0.0]])
    p = bradley_terry(wins, counts, prior=0.0)
    assert p[0] / p[1] == pytest.approx(3.0)  # the MLE odds are the win ratio


def test_no_votes_is_a_clear_message():
    empty = pd.DataFrame(columns=["by", "left_arm", "right_arm", "choice"])
    table = win_rates(empty)
    assert table.empty and table.attrs["message"] == NO_VOTES
    fig = plot_win_rates(table)
    assert isinstance(fig, Figure) and NO_VOTES in fig.axes[0].texts[0].get_text()


def test_plot_shows_each_arms_estimate_and_interval(tmp_path):
    table = win_rates(simulate(60, seed=2), n_boot=200)
    fig = plot_win_rates(table)
    ax_rate, ax_bt = fig.axes
    top_down = table.iloc[::-1]  # strongest on top
    assert [t.get_text() for t in ax_rate.get_yticklabels()] == list(top_down["arm"])
    for ax, col in ((ax_rate, "win_rate"), (ax_bt, "strength")):
        points = ax.lines[0]
        assert list(points.get_xdata()) == pytest.approx(list(top_down[col]))
        assert list(points.get_ydata()) == [0, 1, 2]
        bars = [seg[:, 0] for seg in ax.collections[0].get_segments()]  # one horizontal bar per arm
        assert [tuple(b) for b in bars] == [
            pytest.approx((lo, hi)) for lo, hi in zip(top_down[f"{col}_low"], top_down[f"{col}_high"])
        ]
    for ax, ref in ((ax_rate, 0.5), (ax_bt, 1 / 3)):  # the no-preference line: ½, and 1 / arms
        assert any(list(line.get_xdata()) == pytest.approx([ref, ref]) for line in ax.lines[1:])
    assert "n = 60 votes" in ax_rate.get_xlabel()
    fig.savefig(tmp_path / "win_rates.png")


def test_the_default_prior_has_a_closed_form_with_three_arms():
    """A beats B 3 of 4 and C 3 of 4; B and C never met. With the default prior (0.5 pseudo-
    comparisons per pair, scored as ties: 0.25 wins each way) B and C are symmetric and A's odds
    against either are r/(1−r) with r = (3 + 0.25) / (4 + 0.5), so p = (o, 1, 1) / (o + 2)."""
    odds = (3.25 / 4.5) / (1 - 3.25 / 4.5)
    expected = [odds / (odds + 2), 1 / (odds + 2), 1 / (odds + 2)]
    wins = np.array([[0.0, 3, 3], [1, 0, 0], [1, 0, 0]])
    counts = np.array([[0.0, 4, 4], [4, 0, 0], [4, 0, 0]])
    assert list(bradley_terry(wins, counts)) == pytest.approx(expected, abs=1e-8)
    assert expected == pytest.approx([13 / 23, 5 / 23, 5 / 23])
    votes = pd.DataFrame(
        {
            "by": "x",
            "left_arm": ["A"] * 4 + ["C"] * 4,
            "right_arm": ["B"] * 4 + ["A"] * 4,
            "choice": ["left", "left", "left", "right", "right", "right", "right", "left"],
        }
    )
    table = win_rates(votes, n_boot=20).set_index("arm")
    assert list(table.loc[["A", "B", "C"], "strength"]) == pytest.approx(expected, abs=1e-8)


def test_wins_losses_ties_and_rates_are_counted_per_arm_from_either_side():
    votes = pd.DataFrame(
        {
            "by": "x",
            "left_arm": ["a", "b", "a", "c", "b", "a", None, "c"],
            "right_arm": ["b", "a", "c", "a", "c", "b", "a", "c"],  # the last two are no comparison
            "choice": ["left", "left", "right", "left", "tie", "both_bad", "left", "left"],
        }
    )
    table = win_rates(votes, n_boot=20).set_index("arm")
    assert list(table.columns) == [c for c in COLUMNS if c != "arm"]
    assert table.loc["a", ["n", "wins", "losses", "ties", "both_bad"]].tolist() == [5, 1, 3, 1, 1]
    assert table.loc["b", ["n", "wins", "losses", "ties", "both_bad"]].tolist() == [4, 1, 1, 2, 1]
    assert table.loc["c", ["n", "wins", "losses", "ties", "both_bad"]].tolist() == [3, 2, 0, 1, 0]
    assert table.loc["a", "win_rate"] == pytest.approx(1.5 / 5) and table.loc["c", "win_rate"] == pytest.approx(2.5 / 3)


def test_an_arm_voted_on_once_has_a_win_rate():
    votes = pd.DataFrame({"by": "x", "left_arm": ["a", "a", "c"], "right_arm": ["b", "b", "a"], "choice": ["left"] * 3})
    table = win_rates(votes, n_boot=20).set_index("arm")
    assert table.loc["c", "n"] == 1 and table.loc["c", "win_rate"] == 1.0


def test_the_intervals_are_the_percentiles_of_fits_to_resampled_votes():
    """95 % percentile bootstrap over whole votes (the module docstring), recomputed here from its parts."""
    votes = simulate(40, seed=3, tie_margin=0.05)
    arms = sorted(TRUE)
    table = win_rates(votes, n_boot=200, seed=11).set_index("arm").loc[arms]
    index = {a: i for i, a in enumerate(arms)}
    left, right = votes["left_arm"].map(index).to_numpy(), votes["right_arm"].map(index).to_numpy()
    score = votes["choice"].map({"left": 1.0, "right": 0.0, "tie": 0.5}).to_numpy()
    draws = np.random.default_rng(11).multinomial(len(votes), np.full(len(votes), 1 / len(votes)), size=200)
    fits, rates = [], []
    for weights in draws:
        wins, counts = np.zeros((3, 3)), np.zeros((3, 3))
        for w, i, j, s in zip(weights, left, right, score):
            wins[i, j] += w * s
            wins[j, i] += w * (1 - s)
            counts[i, j] += w
            counts[j, i] += w
        fits.append(bradley_terry(wins, counts))
        with np.errstate(invalid="ignore"):
            rates.append(wins.sum(axis=1) / counts.sum(axis=1))
    assert table["strength_low"].tolist() == pytest.approx(np.nanpercentile(fits, 2.5, axis=0).tolist())
    assert table["strength_high"].tolist() == pytest.approx(np.nanpercentile(fits, 97.5, axis=0).tolist())
    assert table["win_rate_low"].tolist() == pytest.approx(np.nanpercentile(rates, 2.5, axis=0).tolist())
    assert table["win_rate_high"].tolist() == pytest.approx(np.nanpercentile(rates, 97.5, axis=0).tolist())


def test_tables_of_several_parameters_come_sorted_by_parameter_then_strength():
    votes = pd.concat([simulate(30, seed=4).assign(by="seed"), simulate(30, seed=5).assign(by="cfg_scale")])
    table = win_rates(votes, n_boot=20)
    assert list(table["by"]) == ["cfg_scale"] * 3 + ["seed"] * 3 and list(table.index) == list(range(6))
    for _, part in table.groupby("by"):
        assert list(part["strength"]) == sorted(part["strength"], reverse=True)


def test_by_default_a_table_is_reproducible_from_1000_resamples_with_seed_0():
    votes = simulate(50, seed=6)
    assert win_rates(votes).equals(win_rates(votes, n_boot=1000, seed=0))
    assert not win_rates(votes).equals(win_rates(votes, n_boot=1000, seed=1))
