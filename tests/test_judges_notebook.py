"""The A/B notebook template shows how far to trust the judge: judged clips, agreement with the votes."""

from __future__ import annotations

import pytest
from test_notebooks import KEY, printed, run_template, shown

import kling_lab as kl


@pytest.fixture
def kernel_env(emulator, monkeypatch):
    """A FAL_KEY that must never reach a notebook; kernels that start their own emulator."""
    monkeypatch.setenv("FAL_KEY", KEY)
    monkeypatch.delenv("KLING_LAB_EMULATOR", raising=False)


@pytest.mark.slow
def test_ab_template_shows_the_judges_agreement_with_real_and_simulated_votes(kernel_env, tmp_path):
    store = tmp_path / "store"
    arms = kl.run(
        kl.Sweep.grid("arms", prompt="A fox", negative_prompt=["", "blur"], repeats=2), store=store, progress=False
    )
    params = {"sweep_id": arms.sweep_id, "simulate_votes": 4, "judge": "pairwise", "judge_max_cost": 0.5}
    path = run_template("ab_test", params, tmp_path, store)
    text = printed(path)
    assert "judge pairwise: 4 selected: 4 ok" in text  # 2 × 2 clips across the two arms of one prompt
    assert "SIMULATED votes, not real judgements: judge 'pairwise' (its preference) agrees with" in text
    assert "Wilson score interval" in text
    assert shown(path, "text/html") >= 2  # the (empty) agreement with real votes, and the win-rate table
    rows = kl.load_judgements(store)
    assert len(rows) == 4 and rows["placeholder"].all()
    assert kl.load_votes(store).empty  # simulated votes never reach the user's store
