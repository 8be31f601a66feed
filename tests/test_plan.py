"""kl.plan: the noise per cell, the repeats a fixed grid needs and their price, a pilot when nothing
measures the noise, and the votes that would separate the top arm."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kling_lab as kl
from kling_lab.errors import InvalidInput
from kling_lab.stats.power import repeats_for_power, repeats_to_pick

ROOT = Path(__file__).resolve().parents[1]


def test_plan_on_the_quickstart_store_answers_in_words_and_a_table(emulator, tmp_path):
    store = tmp_path / "quickstart"
    kl.run(ROOT / "experiments" / "quickstart.yaml", store=store, progress=False)
    plan = kl.plan(store=store, metric="qc_motion", min_difference=0.5)
    text = str(plan)
    # the quickstart repeats no setting: the noise comes from an additive model, flagged, with a pilot
    assert plan.noise_from == "additive model" and plan.df == 12 - (1 + 2 + 1 + 1)
    assert "no setting was repeated" in text and "qc_motion: repeats of one setting differ by" in text
    assert plan.arms == 12 and len(plan.cells) == 12 and (plan.cells["n"] == 1).all()
    assert plan.repeats == repeats_for_power(plan.sd, 0.5) and plan.repeats_to_pick == max(
        2, repeats_to_pick(plan.sd, 0.5)
    )
    assert f"a fixed grid needs {plan.repeats} repeats per arm: {plan.repeats * 12} clips over 12 arms" in text
    assert f"${plan.repeats * 12 * 1.40:,.2f} on Kling 2.0 Master" in text
    # per model: the store's model at what its clips cost, first; every other registered model at its default clip
    table = plan.table
    assert table["model"].iloc[0] == "kling-2.0-master" and table["USD per clip"].iloc[0] == 1.4
    detect, pick = f"detect: {plan.repeats}/arm (USD)", f"pick: {plan.repeats_to_pick}/arm (USD)"
    assert table[detect].iloc[0] == round(plan.repeats * 12 * 1.4, 2)
    assert table[pick].iloc[0] == round(plan.repeats_to_pick * 12 * 1.4, 2)
    veo = table[table["model"] == "veo-3-fast"].iloc[0]
    assert veo[detect] == pytest.approx(plan.repeats * 12 * veo["USD per clip"], abs=0.01) and len(table) >= 10
    assert plan.pilot is not None and len(plan.pilot) == 6 and plan.pilot_cost_usd == 8.40
    assert "Pilot: 6 clips (2 arms × 3 repeats, $8.40)" in text
    assert "<table" in plan._repr_html_()

    # run the pilot it proposes: now the noise comes from repeats
    kl.run(plan.pilot, store=store, progress=False)
    again = kl.plan(store=store, metric="qc_motion", min_difference=0.5, arms=12)
    assert again.noise_from == "repeats" and again.df == 4 and again.pilot is None
    assert "pooled over 2 settings with repeats; 4 df" in str(again)


def test_the_pooled_sd_is_the_within_cell_sd():
    rng = np.random.default_rng(0)
    rows = [
        {"status": "ok", "prompt": "p", "cfg_scale": c, "qc_motion": m + rng.normal(0, 0.5), "duration_s": 5}
        for c, m in ((0.2, 5.0), (0.8, 9.0))
        for _ in range(30)
    ]
    plan = kl.plan(pd.DataFrame(rows), "qc_motion", 0.25)
    assert plan.sd == pytest.approx(0.5, rel=0.2) and plan.df == 58
    assert plan.repeats == repeats_for_power(plan.sd, 0.25)
    # the difference between settings is not noise
    assert plan.sd < 1.0


def test_no_runs_and_no_sweep_asks_for_one():
    plan = kl.plan(pd.DataFrame(), "qc_motion", 0.3)
    assert plan.sd is None and plan.repeats is None and plan.pilot is None
    assert "Pass arms=<the sweep you plan> to get a priced pilot." in str(plan)


def test_a_planned_sweep_gives_the_pilot_and_the_arm_count():
    sweep = kl.Sweep.grid("next", prompt="a cat", cfg_scale=[0.2, 0.5, 0.8], duration="10")
    plan = kl.plan(pd.DataFrame(), "qc_motion", 0.3, arms=sweep)
    assert plan.arms == 3 and plan.pilot is not None
    assert {i.request.cfg_scale for i in plan.pilot} == {0.2, 0.5} and len(plan.pilot) == 6
    assert plan.pilot_cost_usd == pytest.approx(6 * 2.80)  # 10 s clips


def test_votes_say_how_many_separate_the_top_arm():
    rng = np.random.default_rng(4)
    strengths = {"a": 0.0, "b": -0.5, "c": -1.5}
    rows = []
    for _ in range(60):
        left, right = rng.choice(list(strengths), 2, replace=False)
        p = 1 / (1 + math.exp(-(strengths[left] - strengths[right])))
        rows.append(
            {
                "by": "negative_prompt",
                "left_arm": left,
                "right_arm": right,
                "choice": "left" if rng.random() < p else "right",
            }
        )
    votes = pd.DataFrame(rows)
    plan = kl.plan(pd.DataFrame(), "qc_motion", 0.3, votes=votes)
    assert plan.votes is not None and plan.votes.votes == 60 and plan.votes.top == "a"
    assert not plan.votes.separated and plan.votes.runner_up == "b"
    # θ_a − θ_b ≈ 0.5 known to ±0.35 after 60 votes: about 1,355 votes (a look) at this mix of pairs
    assert plan.votes.votes_needed is not None and 500 < plan.votes.votes_needed < 5000
    assert f"about {plan.votes.votes_needed} votes in all" in str(plan)
    assert "Votes on negative_prompt (60 so far)" in str(plan)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_difference": 0}, "min_difference must be a number > 0"),
        ({"min_difference": -1.0}, "min_difference"),
        ({"power": 1.2}, "power must be a number between 0 and 1"),
        ({"alpha": 0}, "alpha"),
        ({"metric": "qc_nope"}, "runs has no column 'qc_nope'"),
        ({"metric": "prompt"}, "is not numeric"),
        ({"arms": 1}, "arms must be a Sweep or an integer >= 2"),
    ],
)
def test_bad_plan_input_is_one_line(kwargs, message):
    runs = pd.DataFrame([{"status": "ok", "prompt": "p", "cfg_scale": 0.5, "qc_motion": 1.0}])
    options = {"metric": "qc_motion", "min_difference": 0.5, **kwargs}
    with pytest.raises(InvalidInput, match=message) as err:
        kl.plan(runs, **options)
    assert "\n" not in str(err.value)
