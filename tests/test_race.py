"""Races on the emulator: the winner a full grid picks for less than half its clips, a SIGKILL
mid-race resumed without paying twice, the tags on every row, bad input refused before anything
is submitted, and a race that never contradicts the effect test on the same clips.

The emulator's ``qc_motion`` grows with ``cfg_scale`` and drops 1 % per motion word in the negative
prompt (``backends/emulator/render.py``), with about 2.5 % of repeat noise: the arms differ for real.
Renders at 8 fps keep these tests quick (the metric is still linear in the drift speed).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kling_lab as kl
from kling_lab.errors import InvalidInput
from kling_lab.runner.journal import Journal
from kling_lab.runner.race import RaceResult
from kling_lab.store.run_store import RunStore, load_runs
from kling_lab.sweep import Sweep

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "A red fox trotting through fresh snow"
CFGS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
NEGATIVES = ["", "fast motion, shaky"]  # 3 motion words: 3 % less motion, about 1.1 SD of repeat noise
MIN_DIFFERENCE = 0.6  # qc_motion levels at 8 fps and 320x180 (the true gap of the top two arms is ~0.9)


def race_sweep(name: str = "fox-race") -> Sweep:
    return Sweep.grid(name, prompt=PROMPT, cfg_scale=CFGS, negative_prompt=NEGATIVES)


@pytest.fixture
def fast8(emulator):
    emulator.configure(fps=8)
    return emulator


def race(sweep: Sweep, store: Path, **kwargs) -> RaceResult:
    options = dict(metric="qc_motion", higher_is_better=True, min_difference=MIN_DIFFERENCE, concurrency=8)
    result = kl.run(sweep, strategy="race", store=store, progress=False, **{**options, **kwargs})
    assert isinstance(result, RaceResult)
    return result


@pytest.mark.slow
def test_a_12_arm_race_picks_what_the_full_grid_picks_with_at_most_half_the_clips(fast8, tmp_path):
    result = race(race_sweep(), tmp_path / "race")
    n = result.grid_repeats
    assert result.stop in ("cap", "separated", "within_difference"), result.summary()
    assert result.clips <= 0.5 * 12 * n, result.summary()
    assert result.count("ok") == result.clips == fast8.stats()["submissions"]
    winner = result.winner
    assert winner is not None and winner.request.cfg_scale == 0.8 and winner.request.negative_prompt == ""
    text = result.summary()
    assert f"saved ${result.saved_usd:.2f}" in text and result.saved_usd >= 0.5 * result.grid_cost_usd
    assert "winner negative_prompt='', cfg_scale=0.8" in text

    # the full 12 × n grid, on a fresh emulator (same seed: the same noise per request and repeat)
    fast8.reset()
    fast8.configure(fps=8, queue_delay_s=0.05, service_time_s=0.1, render_scale=0.25, concurrency=8)
    grid = Sweep.grid("fox-grid", prompt=PROMPT, cfg_scale=CFGS, negative_prompt=NEGATIVES, repeats=n)
    ran = kl.run(grid, store=tmp_path / "grid", progress=False, concurrency=8)
    means = ran.frame().groupby(["cfg_scale", "negative_prompt"])["qc_motion"].mean()
    assert means.idxmax() == (winner.request.cfg_scale, winner.request.negative_prompt)


def test_every_row_of_a_race_is_tagged_with_its_round_and_the_arms_alive(emulator, tmp_path):
    sweep = Sweep.grid("tagged", prompt=PROMPT, cfg_scale=[0.1, 0.9], negative_prompt=["", "fast"])
    result = race(sweep, tmp_path / "s", max_repeats=4, min_difference=None)
    df = load_runs(tmp_path / "s")
    tags = [json.loads(t) for t in df["params_json"]]
    assert {t["race"] for t in tags} == {result.race_id}
    assert {t["race_metric"] for t in tags} == {"qc_motion"}
    rounds = {t["race_round"] for t in tags}
    assert rounds == set(range(1, len(result.looks) + 1))
    first = [t for t in tags if t["race_round"] == 1]
    assert len(first) == 16 and all(t["race_alive"] == [0, 1, 2, 3] for t in first)  # 4 arms × 4 clips
    for look, number in zip(result.looks[:-1], range(2, 99)):
        later = [t for t in tags if t["race_round"] == number]
        assert later and all(t["race_alive"] == look.contenders for t in later)
    # the repeats of an arm are 0, 1, 2, … across rounds: stable fingerprints for the cache
    for _arm, group in df.groupby(["cfg_scale", "negative_prompt"]):
        assert sorted(group["repeat"]) == list(range(len(group)))
    table = result.table()
    assert list(table["fate"]).count("winner") == 1 and table["clips"].sum() == result.clips


def test_a_callable_metric_and_lower_is_better(emulator, tmp_path):
    sweep = Sweep.grid("calm", prompt=PROMPT, cfg_scale=[0.05, 0.95])

    def calm(row) -> float:  # a function of a row: less motion is calmer
        return float(row["qc_motion"]) * 10

    result = race(sweep, tmp_path / "s", metric=calm, higher_is_better=False, min_difference=None, max_repeats=4)
    assert result.winner is not None and result.winner.request.cfg_scale == 0.05
    assert result.metric.endswith("calm")
    assert result.stop in ("separated", "cap")


def test_a_rerun_of_a_finished_race_pays_nothing(emulator, tmp_path):
    sweep = Sweep.grid("again", prompt=PROMPT, cfg_scale=[0.2, 0.5, 0.8])
    first = race(sweep, tmp_path / "s", max_repeats=4, min_difference=None)
    submitted = emulator.stats()["submissions"]
    again = race(sweep, tmp_path / "s", max_repeats=4, min_difference=None)
    assert emulator.stats()["submissions"] == submitted
    assert again.race_id == first.race_id and again.winner == first.winner
    assert again.cache_hits == again.clips and again.spent_usd == 0
    assert [lk.alive for lk in again.looks] == [lk.alive for lk in first.looks]


RACE_FILE = f"""
name: killed-race
prompt: {PROMPT}
grid:
  cfg_scale: {CFGS[3:]}
  negative_prompt: {NEGATIVES}
"""


def start_race(sweep: Path, store: Path) -> subprocess.Popen:
    args = ["run", str(sweep), "--store", str(store), "--no-progress", "--concurrency", "32"]
    args += ["--race", "qc_motion", "--higher-is-better", "--min-difference", str(MIN_DIFFERENCE)]
    return subprocess.Popen(
        [sys.executable, "-m", "kling_lab.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def rounds_logged(store: Path) -> set[int]:
    if not (store / "runs").exists():
        return set()
    return {json.loads(t)["race_round"] for t in load_runs(store)["params_json"]}


@pytest.mark.slow
def test_sigkill_mid_race_then_a_rerun_finishes_it_with_no_duplicate_submission(fast8, tmp_path):
    fast8.configure(service_time_s=1.5, concurrency=8)
    sweep, store = tmp_path / "race.yaml", tmp_path / "store"
    sweep.write_text(RACE_FILE)
    proc = start_race(sweep, store)
    deadline = time.monotonic() + 120

    def in_flight_and_all_journaled() -> bool:
        """Round 2 or later, requests of it at fal, and every submission the emulator saw journaled: a kill
        now cannot land between a submit and its journal entry (that window is the journal's, not the race's)."""
        if not rounds_logged(store) or max(rounds_logged(store)) < 2:
            return False
        runs = load_runs(store)
        logged = int((runs["cache_hit"] != True).sum())  # noqa: E712 - each submitted request: a row or pending
        pending = Journal(store / "journal").pending()  # read last: the kill follows at once
        return bool(pending) and fast8.stats()["submissions"] == logged + len(pending)

    try:  # kill it in round 2 or later, with requests of that round in flight (journaled, no row yet)
        while not in_flight_and_all_journaled():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the race never reached round 2"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = fast8.stats()["submissions"]
    at_kill = set(Journal(store / "journal").pending())
    assert before > 0 and at_kill

    again = start_race(sweep, store)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    stats = fast8.stats()
    assert max(stats["submissions_by_fingerprint"].values()) == 1, "a request was paid twice"
    twice = {request_id for request_id, n in stats["downloads"].items() if n > 1}
    assert twice <= at_kill, "only a download the kill interrupted may run again (downloads are free)"
    clips = int(re.search(r"(\d+) clips, \$", out).group(1))
    assert "race on qc_motion (higher is better), 6 arms" in out and "from the cache" in out
    assert sum(stats["submissions_by_fingerprint"].values()) == clips  # every clip of the race, once
    real = load_runs(store)
    real = real[real["cache_hit"] != True]  # noqa: E712
    assert real["fingerprint"].is_unique and (real["status"] == "ok").all()
    assert Journal(store / "journal").pending() == {}


# -- bad input: one line, nothing submitted, nothing written ------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "qc_nonsense"}, "metric 'qc_nonsense' is not a numeric run-log column"),
        ({"metric": "prompt"}, "not a numeric run-log column"),
        ({"metric": 3}, "metric must be a run-log column name"),
        ({"confidence": 0.5}, "confidence must be a number between 0.5 and 1"),
        ({"confidence": 1.0}, "confidence must be a number between 0.5 and 1"),
        ({"confidence": 95}, "confidence must be a number between 0.5 and 1"),
        ({"higher_is_better": None}, "higher_is_better"),
        ({"max_cost_usd": 20.0}, r"budget \$20.00 is smaller than the race's first round: 4 arms × 4 clips = \$22.40"),
        ({"initial_repeats": 1}, "initial_repeats must be an integer >= 2"),
    ],
)
def test_bad_race_input_is_refused_before_anything_is_submitted(emulator, tmp_path, kwargs, message):
    sweep = Sweep.grid("bad", prompt=PROMPT, cfg_scale=[0.2, 0.8], negative_prompt=["", "fast"])
    options = {"metric": "qc_motion", "higher_is_better": True, **kwargs}
    with pytest.raises(InvalidInput, match=message) as err:
        kl.run(sweep, strategy="race", store=tmp_path / "s", progress=False, **options)
    assert "\n" not in str(err.value)
    assert emulator.stats()["submissions"] == 0
    assert not RunStore(tmp_path / "s").part_files()


def test_a_race_over_one_arm_is_refused(emulator, tmp_path):
    with pytest.raises(InvalidInput, match="a race needs at least two arms"):
        kl.run(
            Sweep.grid("one", prompt=PROMPT, repeats=3),
            strategy="race",
            metric="qc_motion",
            higher_is_better=True,
            store=tmp_path / "s",
        )
    assert emulator.stats()["submissions"] == 0


def test_race_options_need_the_race_strategy(emulator, tmp_path):
    sweep = Sweep.grid("x", prompt=PROMPT, cfg_scale=[0.2, 0.8])
    with pytest.raises(InvalidInput, match="metric is an option of a race"):
        kl.run(sweep, metric="qc_motion", store=tmp_path / "s")
    with pytest.raises(InvalidInput, match="strategy must be 'grid'"):
        kl.run(sweep, strategy="tournament", store=tmp_path / "s")
    assert emulator.stats()["submissions"] == 0


def test_the_budget_stops_a_race_before_a_round_it_cannot_pay(emulator, tmp_path):
    sweep = Sweep.grid("poor", prompt=PROMPT, cfg_scale=[0.5, 0.5001])  # two near-identical arms
    result = race(sweep, tmp_path / "s", max_cost_usd=15.0, min_difference=None)  # 2 × 4 clips = $11.20
    assert result.stop == "budget" and result.clips == 8 and result.cost_usd == 11.2
    assert "the next round would go over the budget" in result.summary()
    assert emulator.stats()["submissions"] == 8


# -- the race and the effect test agree ------------------------------------------------------------
@pytest.mark.slow
def test_the_race_and_the_effect_test_agree_on_the_same_clips(fast8, tmp_path):
    """Arms differing only in cfg_scale: the race separates them, and the effect test on the race's own
    clips finds cfg_scale matters. Arms differing only in a negative prompt without motion words: the
    race separates nothing, and the effect test finds no evidence."""
    strong = race(
        Sweep.grid("strong", prompt=PROMPT, cfg_scale=[0.2, 0.8]), tmp_path / "a", max_repeats=6, min_difference=None
    )
    assert strong.stop == "separated"
    assert kl.effect(strong.frame(), "cfg_scale", "qc_motion").significant

    null = race(
        Sweep.grid("null", prompt=PROMPT, cfg_scale=0.5, negative_prompt=["blur", "low quality"]),
        tmp_path / "b",
        max_repeats=6,
        min_difference=None,
    )
    assert null.stop == "cap" and all(null.last.alive)
    assert not kl.effect(null.frame(), "negative_prompt", "qc_motion").significant


def test_a_race_across_models_prices_each_arm_by_its_model(emulator, tmp_path):
    sweep = Sweep.grid("models", prompt=PROMPT, model=["kling-2.0-master", "kling-2.5-turbo-pro"])
    result = race(sweep, tmp_path / "s", max_repeats=4, min_difference=None)
    assert [a.label for a in result.arms] == ["model='kling-2.0-master'", "model='kling-2.5-turbo-pro'"]
    assert result.cost_usd == round(4 * 1.40 + 4 * 0.35, 2) and set(result.table()["model"]) == {
        "kling-2.0-master",
        "kling-2.5-turbo-pro",
    }
