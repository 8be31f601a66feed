"""``kling-lab judge`` / ``estimate-judge`` and the money safety of judging: SIGKILL mid-judging then a
re-run (or ``kling-lab resume``) pays for no judge call twice; Ctrl-C cancels judge calls at fal."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from test_bad_input import assert_refused
from test_resume import ROOT, start_cli, wait_until

import kling_lab as kl
from kling_lab.runner.journal import Journal
from kling_lab.store.judgements import DATASET
from kling_lab.store.run_store import RunStore

JUDGE = "fal-ai/video-understanding"


def make_clips(store, n: int) -> None:
    sweep = kl.Sweep.grid(
        "clips", prompt="a glass of water on a table", cfg_scale=[round(0.1 * i, 2) for i in range(n)]
    )
    assert kl.run(sweep, store=store, progress=False).count("ok") == n


def judge_ids(store) -> set[str]:
    return {
        e["request_id"]
        for path in Journal(store / "journal").files()
        for e in Journal(store / "journal")._events(path)
        if e.get("event") == "submitted" and e.get("endpoint") == JUDGE
    }


def judge_submissions(emulator) -> dict[str, int]:
    """Submissions per fingerprint of judge calls (the judge's fingerprints are in the judgements)."""
    return emulator.stats()["submissions_by_fingerprint"]


def all_journaled(emulator, store, clips: int) -> bool:
    """Every judge call the emulator accepted is in the journal: a kill now cannot land between a submit
    and its journal entry (that window is the journal's, for clips and judge calls alike)."""
    return emulator.stats()["submissions"] - clips == len(judge_ids(store))


def test_sigkill_mid_judging_then_a_rerun_pays_for_nothing_twice(emulator, tmp_path):
    store = tmp_path / "store"
    make_clips(store, 8)
    clip_fingerprints = set(judge_submissions(emulator))
    emulator.configure(service_time_s=0.8, concurrency=2)
    proc = start_cli("judge", "--store", str(store), "--concurrency", "4", "--no-progress")
    try:
        wait_until(
            lambda: (
                len(judge_ids(store)) >= 5
                and len(RunStore(store).dataset_files(DATASET)) >= 1
                and all_journaled(emulator, store, 8)
            )
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = kl.load_judgements(store)
    assert 1 <= len(before) < 8, "the kill must land mid-judging"
    pending = [p for p in Journal(store / "journal").pending().values() if p.sweep.get("kind") == "judge"]
    assert pending, "some judge calls were in flight"

    again = start_cli("judge", "--store", str(store), "--no-progress")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    rows = kl.load_judgements(store)
    assert len(rows) == 8 and rows["fingerprint"].is_unique and (rows["status"] == "ok").all()
    assert rows["request_id"].is_unique
    judged = {k: v for k, v in judge_submissions(emulator).items() if k not in clip_fingerprints}
    assert set(judged) == set(rows["fingerprint"]) and max(judged.values()) == 1, "no judge call paid twice"
    assert emulator.stats()["submissions"] == 16
    assert Journal(store / "journal").pending() == {}
    assert "judged before" in out  # the rows written before the kill were cache hits


def test_kling_lab_resume_collects_journaled_judge_calls(emulator, tmp_path):
    store = tmp_path / "store"
    make_clips(store, 4)
    emulator.configure(service_time_s=1.0, concurrency=4)
    proc = start_cli("judge", "--store", str(store), "--no-progress")
    try:
        wait_until(lambda: len(judge_ids(store)) == 4)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert kl.load_judgements(store).empty
    done = subprocess.run(
        [sys.executable, "-m", "kling_lab.cli", "resume", "--store", str(store), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "judge calls: 4 journaled" in done.stderr and "4 ok" in done.stdout
    rows = kl.load_judgements(store)
    assert len(rows) == 4 and (rows["status"] == "ok").all()
    assert emulator.stats()["submissions"] == 8  # 4 clips + 4 judge calls, none sent twice
    assert Journal(store / "journal").pending() == {}
    assert kl.judge(store=store, progress=False).written == 0


def test_ctrl_c_cancels_judge_calls_at_fal(emulator, tmp_path):
    store = tmp_path / "store"
    make_clips(store, 3)
    emulator.configure(service_time_s=3600.0, concurrency=3)  # nothing finishes before the Ctrl-C
    proc = start_cli("judge", "--store", str(store), "--no-progress")
    wait_until(lambda: len(judge_ids(store)) == 3)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "nothing is paid twice" in err
    rows = kl.load_judgements(store)
    assert (rows["status"] == "cancelled").sum() == 3 and rows["cost_usd"].sum() == 0
    assert emulator.stats()["cancels"] == 3


def test_cli_judge_and_estimate(emulator, tmp_path, capsys):
    from kling_lab.cli.app import main

    store = tmp_path / "store"
    make_clips(store, 2)
    assert main(["estimate-judge", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "judge vlm on emulator: 2 clips: 2 to send; $0.0200 at most" in out
    before = emulator.stats()["submissions"]
    assert emulator.stats()["submissions"] == before  # estimating sends nothing
    assert main(["judge", "--store", str(store), "--no-progress", "--max-cost", "1"]) == 0
    captured = capsys.readouterr()
    assert "judge vlm: 2 selected: 2 ok" in captured.out and "PLACEHOLDER" in captured.err  # the plan line
    assert main(["estimate-judge", "--store", str(store)]) == 0
    assert "2 judged before ($0), 0 to send" in capsys.readouterr().out
    assert main(["judge", "--store", str(store), "--judge", "qc"]) == 0
    assert "judge qc: 2 selected: 2 ok" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--judge", "nope"], "unknown judge 'nope'"),
        (["--rubric", "RUBRIC"], "no dimensions"),
        (["--sweep", "nosuch"], "no sweep 'nosuch'"),
        (["--endpoint", "fal-ai/nothing"], "not a judge endpoint"),
        (["--max-cost", "-1"], "--max-cost"),
    ],
)
def test_cli_bad_input_is_one_line_and_sends_nothing(emulator, tmp_path, capsys, extra, says):
    store = tmp_path / "store"
    make_clips(store, 1)
    submitted = emulator.stats()["submissions"]
    rubric = tmp_path / "empty.yaml"
    rubric.write_text("instructions: be strict\ndimensions: {}\n")
    args = ["judge", "--store", str(store), *[str(rubric) if a == "RUBRIC" else a for a in extra]]
    assert_refused(args, capsys, says=says)
    assert emulator.stats()["submissions"] == submitted
    assert not (store / DATASET).exists()


def test_cli_refuses_runs_with_no_video(emulator, tmp_path, capsys):
    store = tmp_path / "store"
    blocked = kl.Sweep.grid("blocked", prompt="a [blocked] scene")  # the emulator's content checker refuses it
    assert kl.run(blocked, store=store, progress=False).count("failed") == 1
    submitted = emulator.stats()["submissions"]
    assert_refused(["judge", "--store", str(store)], capsys, says="no run with a video")
    assert emulator.stats()["submissions"] == submitted and not (store / DATASET).exists()


def retries_journaled(store) -> int:
    journal = Journal(store / "journal")
    return sum(
        1
        for path in journal.files()
        for e in journal._events(path)
        if e.get("event") == "submitted" and (e.get("sweep") or {}).get("retry_of")
    )


def test_sigkill_while_an_invalid_answer_is_asked_again_pays_for_no_call_twice(emulator, tmp_path):
    store = tmp_path / "store"
    make_clips(store, 3)
    clip_fingerprints = set(judge_submissions(emulator))
    emulator.configure(service_time_s=0.8, concurrency=3, rate_bad_judge_output=1.0)
    proc = start_cli("judge", "--store", str(store), "--no-progress")
    try:
        wait_until(lambda: retries_journaled(store) >= 1 and all_journaled(emulator, store, 3))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    again = start_cli("judge", "--store", str(store), "--no-progress")
    _out, err = again.communicate(timeout=120)
    assert again.returncode == 1, err  # every answer invalid twice: failed rows
    rows = kl.load_judgements(store)
    assert len(rows) == 3 and set(rows["error_type"]) == {"invalid_output"} and set(rows["tries"]) == {2}
    assert rows["cost_usd"].tolist() == pytest.approx([0.02] * 3)  # the first call's cost carried over the kill
    assert rows["raw_text"].str.contains("--- asked again ---").all()
    judged = {k: v for k, v in judge_submissions(emulator).items() if k not in clip_fingerprints}
    assert len(judged) == 6 and max(judged.values()) == 1, "each first call and each retry sent once"
    assert Journal(store / "journal").pending() == {}


def test_judge_calls_ride_out_429_500_and_dropped_connections(emulator, tmp_path):
    store = tmp_path / "store"
    make_clips(store, 4)
    emulator.configure(rate_429=0.2, rate_500=0.15, rate_drop=0.1, retry_after_s=0.01, seed=3)
    result = kl.judge(store=store, progress=False, backend_options=None)
    assert result.count("ok") == 4, result.summary()
    faults = emulator.stats()["faults"]
    assert sum(faults.get(k, 0) for k in ("429", "500", "drop")) >= 1, faults
    rows = kl.load_judgements(store)
    assert rows["fingerprint"].is_unique and rows["request_id"].is_unique
