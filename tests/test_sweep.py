"""Sweep: grid / zip / list / repeats, YAML loading and its errors, estimate. Pure."""

from pathlib import Path

import pytest

from kling_lab.errors import InvalidRequest, SweepFileError
from kling_lab.sweep import Sweep

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_is_12_requests_16_80():
    sweep = Sweep.from_yaml(ROOT / "experiments" / "quickstart.yaml")
    assert len(sweep) == 12
    assert sweep.total_usd() == pytest.approx(16.80)
    est = sweep.estimate()
    assert (est.requests, est.total_usd) == (12, pytest.approx(16.80))
    combos = {(i.request.cfg_scale, i.request.aspect_ratio, i.request.negative_prompt) for i in sweep}
    assert len(combos) == 12


def test_grid_product_with_several_prompts():
    s = Sweep.grid("g", prompt=["a", "b"], cfg_scale=[0.1, 0.9], duration="10")
    assert [(i.request.prompt, i.request.cfg_scale) for i in s] == [("a", 0.1), ("a", 0.9), ("b", 0.1), ("b", 0.9)]
    assert all(i.request.duration == "10" for i in s)
    assert s.total_usd() == pytest.approx(4 * 2.80)


def test_zip_pairs_elementwise():
    s = Sweep.zip("z", prompt=["a", "b", "c"], cfg_scale=[0.1, 0.2, 0.3])
    assert [(i.request.prompt, i.request.cfg_scale) for i in s] == [("a", 0.1), ("b", 0.2), ("c", 0.3)]


def test_zip_length_mismatch_is_clear():
    with pytest.raises(SweepFileError, match="same length.*prompt=2.*cfg_scale=3"):
        Sweep.zip("z", prompt=["a", "b"], cfg_scale=[0.1, 0.2, 0.3])


def test_repeats_are_distinct_fingerprints():
    s = Sweep.grid("r", prompt="a", cfg_scale=[0.2, 0.4], repeats=3)
    assert len(s) == 6
    assert len({i.fingerprint for i in s}) == 6
    assert [i.repeat for i in s] == [0, 1, 2, 0, 1, 2]
    assert [i.index for i in s] == list(range(6))


def test_explicit_list_and_sweep_id_stability():
    a = Sweep.from_list([{"prompt": "a"}, {"prompt": "b", "duration": 10}], name="l")
    b = Sweep.from_list([{"prompt": "a"}, {"prompt": "b", "duration": "10"}], name="l")
    assert a.sweep_id == b.sweep_id
    assert a.total_usd() == pytest.approx(4.20)
    assert Sweep.from_list([{"prompt": "a"}], name="l").sweep_id != a.sweep_id


def test_yaml_combines_fixed_grid_zip_requests(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(
        "name: combo\nprompt: base\nduration: 10\n"
        "grid: {cfg_scale: [0.1, 0.9]}\n"
        "zip: {aspect_ratio: ['16:9', '1:1'], negative_prompt: ['', 'blur']}\n"
        "requests: [{}, {prompt: other}]\nrepeats: 2\ntags: {owner: ana}\n"
    )
    s = Sweep.from_yaml(f)
    assert len(s) == 2 * 2 * 2 * 2
    assert s.tags == {"owner": "ana"}
    assert {i.request.prompt for i in s} == {"base", "other"}


@pytest.mark.parametrize(
    "text,error,needle",
    [
        ("name: x\nprompt: a\ncfg: 0.5\n", SweepFileError, "cfg: unknown key"),
        ("name: x\nprompt: a\ngrid: {cfg: [0.5]}\n", SweepFileError, "grid.cfg: unknown input"),
        ("name: x\nprompt: a\ngrid: {cfg_scale: [0.5, 1.5]}\n", InvalidRequest, "cfg_scale"),
        ("name: x\nprompt: a\ngrid: {cfg_scale: .nan}\n", SweepFileError, "grid.cfg_scale"),
        ("name: x\nprompt: a\ncfg_scale: .nan\n", InvalidRequest, "finite"),
        ("name: x\nprompt: a\nduration: '7'\n", InvalidRequest, "duration"),
        ("name: x\nprompt: a\naspect_ratio: '4:3'\n", InvalidRequest, "aspect_ratio"),
        ("name: x\nprompt: ''\n", InvalidRequest, "prompt"),
        ("name: x\nrepeats: 0\nprompt: a\n", SweepFileError, "repeats"),
        ("- 1\n- 2\n", SweepFileError, "mapping"),
        ("name: [unclosed\n", SweepFileError, "not valid YAML"),
    ],
)
def test_bad_sweep_files(tmp_path, text, error, needle):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(error) as info:
        Sweep.from_yaml(f)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)
    assert str(f) in str(info.value)


def test_missing_file():
    with pytest.raises(SweepFileError, match="no such sweep file"):
        Sweep.from_yaml("/nonexistent/sweep.yaml")


def test_estimate_worst_case_scales_with_concurrency():
    s = Sweep.grid("e", prompt="a", cfg_scale=[0.1, 0.2, 0.3, 0.4, 0.5], duration=[5, 10])
    e1 = s.estimate(concurrency=1, seconds_per_request={"5": 100, "10": 200})
    e5 = s.estimate(concurrency=5, seconds_per_request={"5": 100, "10": 200})
    assert e1.worst_case_s == 10 * 200
    assert e5.worst_case_s == 2 * 200
    assert e1.by_duration == {"5": 5, "10": 5}
    assert e1.total_usd == pytest.approx(5 * 1.40 + 5 * 2.80)
    assert "10 requests" in str(e1)
