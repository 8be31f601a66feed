"""effect(): does a parameter change the output more than repeats do?

Emulator facts the tests rely on: the placeholder's drift speed follows cfg_scale (±5 % jitter per
request) and ignores the negative prompt. A permutation test of 2 settings × r repeats cannot give
p below 2 / C(2r, r) (the labelling and its mirror are equally extreme): 0.029 for r = 4, 0.0079
for r = 5. So "p < 0.01" needs 5 repeats.
"""

import importlib
import math

import numpy as np
import pandas as pd
import pytest

import kling_lab as kl

effect_module = importlib.import_module("kling_lab.stats.effect")  # the module (kling_lab.effect is also the function)
from kling_lab.errors import InvalidInput
from kling_lab.stats.effect import Effect, effect

NEGATIVE = "blur, distort, and low quality"


# -- on emulator sweeps ------------------------------------------------------------------------
@pytest.fixture
def cfg_runs(emulator, tmp_path):
    sweep = kl.Sweep.grid("cfg-effect", prompt="A red fox in snow", cfg_scale=[0.1, 0.9], repeats=5)
    return kl.run(sweep, store=tmp_path / "store", progress=False).frame()


@pytest.mark.slow
def test_cfg_scale_moves_qc_motion_and_the_signature(cfg_runs):
    motion = effect(cfg_runs, "cfg_scale", "qc_motion")
    assert motion.exact and motion.n_permutations == math.comb(10, 5)
    assert motion.p_value == pytest.approx(2 / math.comb(10, 5)) and motion.p_value < 0.01  # the floor
    assert motion.change > 10 * motion.within  # faster drift: far more motion than repeats differ by
    assert motion.n == {0.1: 5, 0.9: 5}
    assert "cfg_scale matters more than run-to-run variation" in str(motion)
    signature = effect(cfg_runs, "cfg_scale", "signature")
    assert signature.kind == "distance" and signature.p_value == pytest.approx(2 / math.comb(10, 5))
    assert signature.between > signature.within


@pytest.mark.slow
def test_four_repeats_reach_the_floor_of_a_two_by_four_design(cfg_runs):
    result = effect(cfg_runs[cfg_runs["repeat"] < 4], "cfg_scale", "qc_motion")
    assert result.arrangements == math.comb(8, 4)
    assert result.p_value == result.min_p == pytest.approx(2 / math.comb(8, 4))  # 0.029: as low as 2 x 4 can go


@pytest.mark.slow
def test_negative_prompt_is_no_more_than_repeat_noise_on_the_emulator(emulator, tmp_path):
    sweep = kl.Sweep.grid(
        "control", prompt="A red fox in snow", cfg_scale=0.5, negative_prompt=["", NEGATIVE], repeats=4
    )
    runs = kl.run(sweep, store=tmp_path / "store", progress=False).frame()
    result = effect(runs, "negative_prompt", "qc_motion")
    assert result.p_value > 0.05 and not result.significant
    assert "no evidence that negative_prompt changes qc_motion more than repeats do" in str(result)


# -- on synthetic run logs ---------------------------------------------------------------------
def frame(values: dict, **columns) -> pd.DataFrame:
    """Rows of ``param value -> list of metric values`` plus constant or per-row extra columns."""
    rows = [{"cfg_scale": level, "qc_motion": v} for level, vs in values.items() for v in vs]
    df = pd.DataFrame(rows)
    for name, value in columns.items():
        df[name] = value
    return df


def test_a_known_effect_in_words_and_numbers():
    rng = np.random.default_rng(0)
    df = frame({0.25: 10 + rng.normal(0, 0.5, 4), 0.75: 20 + rng.normal(0, 0.5, 4)}, status="ok")
    result = effect(df)
    assert result.p_value < 0.05 and result.eta_squared > 0.95
    assert result.change == pytest.approx(result.means[0.75] - result.means[0.25])
    assert result.effect_size == pytest.approx(abs(result.change) / result.within)
    text = str(result)
    assert text.startswith(f"cfg_scale changed qc_motion by {result.change:.3g} (0.25 → 0.75); repeats differ by ")
    assert "(exact, all 70 arrangements) → cfg_scale matters more than run-to-run variation." in text


def test_no_effect_when_every_setting_has_the_same_repeats():
    df = frame({0.25: [1.0, 2.0, 3.0, 4.0], 0.5: [4.0, 3.0, 2.0, 1.0], 0.75: [2.0, 1.0, 4.0, 3.0]})
    result = effect(df, n_permutations=1000)
    assert not result.exact and result.n_permutations == 1000
    assert result.statistic == 0 and result.p_value == 1.0
    assert "→ no evidence that cfg_scale changes qc_motion more than repeats do" in str(result)
    assert "by up to 0 across 3 settings" in str(result)


def test_another_input_that_varies_is_held_fixed():
    # aspect ratio drives the metric; cfg_scale does nothing but mostly ran at the other aspect ratio
    aspects = ["16:9"] * 10 + ["9:16"] * 2 + ["16:9"] * 2 + ["9:16"] * 10
    noise = [0.1, -0.1] * 12  # every cell's mean is its aspect ratio's level
    df = pd.DataFrame(
        {
            "cfg_scale": [0.25] * 12 + [0.75] * 12,
            "aspect_ratio": aspects,
            "qc_motion": [(20.0 if a == "9:16" else 10.0) + e for a, e in zip(aspects, noise)],
        }
    )
    confounded = effect(df, within=[])
    held = effect(df)
    assert held.strata == ("aspect_ratio",) and "compared within each aspect_ratio" in str(held)
    assert confounded.p_value < 0.01 and held.p_value > 0.5
    assert held.means[0.25] == pytest.approx(held.means[0.75])  # balanced means: no tilt from the imbalance


def test_a_cache_hit_counts_once_and_failed_runs_not_at_all():
    df = frame(
        {0.25: [1.0, 1.2, 1.1], 0.75: [3.0, 3.1, 2.9]},
        status=["ok", "ok", "ok", "ok", "ok", "failed"],
        video_sha256=["a", "a", "b", "c", "d", "e"],
    )
    assert effect(df, n_permutations=100).n == {0.25: 2, 0.75: 2}


def test_fewer_than_two_repeats_is_explained():
    with pytest.raises(InvalidInput, match=r"cfg_scale=0.75 has 1 run: .*at least 2 runs of every setting.*repeats="):
        effect(frame({0.25: [1.0, 2.0], 0.75: [3.0]}))


def test_one_setting_or_an_unknown_metric_is_explained():
    with pytest.raises(InvalidInput, match="two or more settings; found only cfg_scale=0.25"):
        effect(frame({0.25: [1.0, 2.0]}))
    with pytest.raises(InvalidInput, match="no column 'qc_nothing'.*qc_motion.*signature"):
        effect(frame({0.25: [1.0, 2.0], 0.75: [3.0, 4.0]}), metric="qc_nothing")


def test_a_design_that_cannot_conclude_says_so():
    result = effect(frame({0.25: [1.0, 1.1], 0.75: [5.0, 5.1]}))
    assert result.arrangements == 6 and result.p_value == result.min_p == pytest.approx(2 / 6)
    assert "With 4 runs in 2 settings p cannot go below 0.33, whatever the videos: add repeats" in str(result)
    three_by_two = effect(frame({0.25: [1.0, 1.1], 0.5: [3.0, 3.1], 0.75: [5.0, 5.1]}))
    assert three_by_two.min_p == pytest.approx(6 / 90) and "cannot go below 0.067" in str(three_by_two)
    assert "cannot go below" not in str(effect(frame({0.25: [1.0, 1.1, 1.2, 1.0], 0.75: [5.0, 5.1, 5.0, 5.2]})))


def test_distance_form_equals_the_scalar_anova(monkeypatch):
    rng = np.random.default_rng(3)
    df = frame({0.1: rng.normal(0, 1, 4), 0.5: rng.normal(1, 1, 4), 0.9: rng.normal(2, 1, 4)})
    df["video_path"] = df["run_id"] = [f"run{i:02d}" for i in range(len(df))]
    by_path = dict(zip(df["video_path"], df["qc_motion"]))

    def distances(paths):
        x = np.array([by_path[p] for p in paths])
        return np.abs(x[:, None] - x[None, :])

    monkeypatch.setitem(effect_module.DISTANCE_METRICS, "abs_diff", distances)
    monkeypatch.setattr(effect_module, "_video_paths", lambda df, store: list(df["video_path"]))
    scalar, distance = effect(df, n_permutations=2000), effect(df, metric="abs_diff", n_permutations=2000)
    assert distance.statistic == pytest.approx(scalar.statistic)
    assert distance.p_value == pytest.approx(scalar.p_value)


def test_the_same_runs_in_another_order_give_the_same_p():
    rng = np.random.default_rng(5)
    df = frame({0.1: rng.normal(0, 1, 6), 0.5: rng.normal(0.5, 1, 6), 0.9: rng.normal(1, 1, 6)})
    df["run_id"] = [f"run{i:02d}" for i in range(len(df))]
    shuffled = df.sample(frac=1, random_state=1)
    assert effect(df, n_permutations=500).p_value == effect(shuffled, n_permutations=500).p_value


def test_plot_shows_every_run_and_the_setting_means():
    df = frame({0.25: [1.0, 1.2, 1.1], 0.75: [3.0, 3.1, 2.9]})
    result = effect(df, n_permutations=100)
    fig = result.plot()
    (ax,) = fig.axes
    assert sum(len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_offsets")) >= 6
    assert ax.get_xlabel() == "cfg_scale" and ax.get_ylabel() == "qc_motion"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.25", "0.75"]
    assert isinstance(result, Effect)
