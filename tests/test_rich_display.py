"""Objects a notebook shows as a cell's last line render as a small table and a verdict (issue 15 item 8)."""

from __future__ import annotations

import pytest
from IPython.core.formatters import DisplayFormatter

import kling_lab as kl
from kling_lab.stats.effect import effect


def shown(obj) -> tuple[str, str]:
    """What Jupyter shows for ``obj`` as a cell's last line: (text/html, text/plain)."""
    data, _ = DisplayFormatter().format(obj)
    assert "text/html" in data, f"{type(obj).__name__} has no HTML display"
    return data["text/html"], data["text/plain"]


def test_sweep_and_estimate():
    sweep = kl.Sweep.grid(
        "<b>fox</b>", prompt="a fox", cfg_scale=[0.25, 0.75], aspect_ratio=["16:9", "9:16"], repeats=2
    )
    html, text = shown(sweep)
    assert "<table" in html and "&lt;b&gt;fox&lt;/b&gt;" in html and "<b>fox</b>" not in html
    assert "cfg_scale" in html and "0.25, 0.75" in html and "8 requests" in html and "$11.20" in html
    assert "items=(" not in text  # not the raw dataclass
    html, text = shown(sweep.estimate())
    assert "<table" in html and "$11.20 if all succeed" in html and "8" in html
    assert "Estimate(requests=" not in text


def test_run_result(emulator, tmp_path):
    result = kl.run(kl.Sweep.grid("fox", prompt="a fox", cfg_scale=[0.25, 0.75]), store=tmp_path / "s", progress=False)
    html, _ = shown(result)
    assert "<table" in html and "$2.80 at fal prices (emulator: nothing was spent)" in html
    assert "2 ok" in html


@pytest.mark.slow
def test_effect_shows_the_verdict(emulator, tmp_path):
    sweep = kl.Sweep.grid("cfg", prompt="a fox", cfg_scale=[0.1, 0.9], repeats=4)
    runs = kl.run(sweep, store=tmp_path / "s", progress=False).frame()
    result = effect(runs, "cfg_scale", "qc_motion", n_permutations=200)
    html, text = shown(result)
    assert "<table" in html and "cfg_scale matters more than run-to-run variation" in html
    assert "p = " in html and "0.1" in html and "0.9" in html
    assert "_x=" not in text and "eta_squared=" not in text  # not the raw dataclass
    assert "cfg_scale" in text
