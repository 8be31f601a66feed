"""The runner on the emulator through the real fal-client: rows, cache, budget, faults, timeouts, cancel."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import av
import pytest

from kling_lab.backends.emulator.backend import PLACEHOLDER_KEY
from kling_lab.runner.api import make_runner, run
from kling_lab.store.run_store import RunStore, load_runs
from kling_lab.sweep import Sweep

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"


def small_sweep(n: int = 4, name: str = "small", **fixed) -> Sweep:
    cfgs = [round(0.1 + 0.8 * i / max(1, n - 1), 3) for i in range(n)]
    return Sweep.grid(name, prompt=fixed.pop("prompt", "a lighthouse in a storm"), cfg_scale=cfgs, **fixed)


def test_quickstart_twelve_ok_playable_rows(emulator, tmp_path):
    result = run(QUICKSTART, store=tmp_path, progress=False)
    assert result.count("ok") == 12 and result.submitted == 12
    df = load_runs(tmp_path)
    assert len(df) == 12
    assert set(df["backend"]) == {"emulator"}
    assert df["cost_usd"].sum() == pytest.approx(16.80)
    assert df["request_id"].notna().all() and df["request_id"].is_unique
    for col in (
        "submitted_at",
        "started_at",
        "completed_at",
        "queue_s",
        "inference_s",
        "total_s",
        "download_s",
        "video_url",
        "video_sha256",
        "video_bytes",
    ):
        assert df[col].notna().all(), col
    assert (df["total_s"] >= df["inference_s"]).all()
    assert (df["queue_s"] >= 0).all()
    for _, row in df.iterrows():
        with av.open(row["video_path"]) as container:
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            assert stream.codec_context.name == "h264"
            duration = float(stream.frames / stream.average_rate)
        assert abs(duration - row["duration_s"]) <= 0.1
        assert abs(w / h - {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0}[row["aspect_ratio"]]) < 0.02
    assert emulator.stats()["submissions"] == 12


def test_rerun_submits_nothing_and_costs_nothing(emulator, tmp_path):
    sweep = small_sweep(3)
    run(sweep, store=tmp_path, progress=False)
    before = emulator.stats()["submissions"]
    again = run(sweep, store=tmp_path, progress=False)
    assert emulator.stats()["submissions"] == before == 3
    assert again.submitted == 0 and again.spent_usd == 0 and again.cache_hits == 3
    df = load_runs(tmp_path)
    hits = df[df["cache_hit"] == True]  # noqa: E712
    assert len(hits) == 3 and hits["cost_usd"].sum() == 0
    originals = df[df["cache_hit"] == False].set_index("run_id")  # noqa: E712
    assert set(hits["source_run_id"]) == set(originals.index)
    assert df["cost_usd"].sum() == pytest.approx(3 * 1.40)


def test_force_bypasses_cache(emulator, tmp_path):
    sweep = small_sweep(2)
    run(sweep, store=tmp_path, progress=False)
    forced = run(sweep, store=tmp_path, progress=False, force=True)
    assert forced.submitted == 2 and emulator.stats()["submissions"] == 4


def test_repeats_are_submitted_separately(emulator, tmp_path):
    sweep = Sweep.grid("rep", prompt="a kite", cfg_scale=0.5, repeats=3)
    result = run(sweep, store=tmp_path, progress=False)
    assert result.submitted == 3
    stats = emulator.stats()
    assert list(stats["submissions_by_input"].values()) == [3]
    assert sorted(stats["submissions_by_fingerprint"].values()) == [1, 1, 1]


def test_budget_cap_five_dollars_at_concurrency_eight(emulator, tmp_path):
    sweep = small_sweep(12, name="capped")
    result = run(sweep, store=tmp_path, progress=False, max_cost_usd=5.0, concurrency=8)
    df = load_runs(tmp_path)
    assert emulator.stats()["submissions"] == 3
    assert (df["status"] == "ok").sum() == 3 and df["cost_usd"].sum() == pytest.approx(4.20)
    assert (df["status"] == "skipped_budget").sum() == 9
    assert df.loc[df["status"] == "skipped_budget", "cost_usd"].sum() == 0
    assert set(df.loc[df["status"] == "skipped_budget", "error"]) == {"max cost $5.00 for this sweep would be exceeded"}
    assert "9 skipped: budget cap reached" in result.summary()


def test_transient_faults_twenty_percent_all_end_ok(emulator, tmp_path):
    emulator.configure(
        rate_429=0.05,
        rate_500=0.05,
        rate_503=0.05,
        rate_drop=0.05,
        seed=7,
        fault_calls={"submit", "status", "result", "download"},
    )
    sweep = small_sweep(8, name="faulty")
    from kling_lab.runner.retry import Backoff

    result = run(sweep, store=tmp_path, progress=False, backoff=Backoff(base_s=0.02, cap_s=0.2), concurrency=4)
    df = load_runs(tmp_path)
    assert (df["status"] == "ok").all() and len(df) == 8, df[["status", "error_type", "error"]]
    assert result.count("ok") == 8
    faults = emulator.stats()["faults"]
    assert sum(faults.values()) > 0, "the test must actually inject faults"


def test_content_policy_fails_after_exactly_one_submission(emulator, tmp_path):
    sweep = Sweep.from_list([{"prompt": "ok prompt"}, {"prompt": "a [blocked] scene"}], name="policy")
    run(sweep, store=tmp_path, progress=False)
    df = load_runs(tmp_path).set_index("prompt")
    assert df.loc["ok prompt", "status"] == "ok"
    bad = df.loc["a [blocked] scene"]
    assert bad["status"] == "failed" and bad["error_type"] == "content_policy_violation"
    assert (
        bad["cost_usd"] == 0 and bad["error"] == "The prompt was flagged by the content checker (kling_lab emulator)."
    )
    fp = Sweep.from_list([{"prompt": "a [blocked] scene"}]).items[0].fingerprint
    assert emulator.stats()["submissions_by_fingerprint"][fp] == 1


def test_truncated_video_is_retried_then_ok(emulator, tmp_path):
    emulator.configure(rate_truncated_video=0.3, seed=3)
    from kling_lab.runner.retry import Backoff

    run(small_sweep(4, name="trunc"), store=tmp_path, progress=False, download_attempts=5, backoff=Backoff(0.01, 0.05))
    df = load_runs(tmp_path)
    assert (df["status"] == "ok").all()
    assert emulator.stats()["faults"].get("truncated_video", 0) > 0


def test_video_over_size_cap_is_refused(emulator, tmp_path):
    run(small_sweep(1, name="big"), store=tmp_path, progress=False, max_video_bytes=1000)
    row = load_runs(tmp_path).iloc[0]
    assert row["status"] == "failed" and row["error_type"] == "too_large"


def test_request_timeout_cancels_at_fal(emulator, tmp_path):
    emulator.configure(service_time_s=30.0)
    run(small_sweep(2, name="slow"), store=tmp_path, progress=False, request_timeout_s=0.5)
    df = load_runs(tmp_path)
    assert (df["status"] == "failed").all() and (df["error_type"] == "timeout").all()
    assert emulator.stats()["cancels"] == 2
    assert df["cost_usd"].sum() == 0


def test_cancellation_cancels_in_flight_and_resume_collects_rest(emulator, tmp_path):
    emulator.configure(service_time_s=3600.0, concurrency=2)  # nothing finishes before the interrupt
    sweep = small_sweep(6, name="interrupted")

    async def interrupted():
        runner = make_runner("emulator", tmp_path, progress=False, concurrency=3)
        task = asyncio.ensure_future(runner.run(sweep))
        while emulator.stats()["submissions"] < 3:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return runner.last_result

    last = asyncio.run(interrupted())
    assert last is not None and last.interrupted
    df = load_runs(tmp_path)
    cancelled = df[df["status"] == "cancelled"]
    assert len(df) == len(cancelled) == 3 and cancelled["cost_usd"].sum() == 0  # the 3 in flight, 2 of them running
    assert emulator.stats()["cancels"] == len(cancelled)
    assert df["request_id"].is_unique
    # Re-running submits only what never reached a terminal row.
    emulator.configure(service_time_s=0.1)
    run(sweep, store=tmp_path, progress=False)
    final = load_runs(tmp_path)
    per_fp = final[final["cache_hit"] == False].groupby("fingerprint").size()  # noqa: E712
    assert set(final["fingerprint"]) == {i.fingerprint for i in sweep}
    assert (final.groupby("fingerprint")["status"].apply(lambda s: (s == "ok").any())).all()
    assert per_fp.max() <= 2  # a cancelled row, then the new ok one


def test_every_request_id_ever_seen_is_journaled_or_logged(emulator, tmp_path):
    run(small_sweep(3, name="ids"), store=tmp_path, progress=False)
    assert RunStore(tmp_path).load()["request_id"].nunique() == 3
    assert not list((tmp_path / "journal").glob("*.jsonl")), "a finished run leaves no pending journal"


def test_the_users_fal_key_never_reaches_the_emulator(emulator, tmp_path, monkeypatch):
    secret = "fal-user-key-id:fal-user-key-secret"
    monkeypatch.setenv("FAL_KEY", secret)
    result = run(small_sweep(2, name="keyed"), store=tmp_path, progress=False)
    assert result.count("ok") == 2
    seen = emulator.stats()["authorization"]
    assert seen["requests"] >= 2 * 3  # at least submit, status and result per request
    assert seen["sha256"] == [hashlib.sha256(f"Key {PLACEHOLDER_KEY}".encode()).hexdigest()]
    assert hashlib.sha256(f"Key {secret}".encode()).hexdigest() not in seen["sha256"]


def test_a_lost_submit_response_through_the_runner_is_adopted_not_paid_twice(emulator, tmp_path):
    """A submit whose answer was lost is not re-sent blindly (fal-client would: two paid jobs): the
    runner finds the job in fal's request listing and adopts it (issue 12 item 4)."""
    from kling_lab.backends.emulator import EmulatorConfig
    from kling_lab.backends.emulator.kling import KlingTextToVideo
    from kling_lab.backends.emulator.queue import job_key

    sweep = small_sweep(1, name="lost")
    key = KlingTextToVideo().input_hash(sweep.items[0].request)
    seed = next(
        s
        for s in range(1000)
        if (cfg := EmulatorConfig(seed=s)).chance(0.5, job_key(key, 0), "lost_submit")
        and not cfg.chance(0.5, job_key(key, 1), "lost_submit")
    )
    emulator.configure(seed=seed, rate_lost_submit=0.5)
    result = run(sweep, store=tmp_path, progress=False)
    assert result.count("ok") == 1 and result.submitted == 1
    stats = emulator.stats()
    assert stats["faults"] == {"lost_submit": 1}
    assert stats["submissions_by_fingerprint"] == {sweep.items[0].fingerprint: 1}, "one paid job at fal"
    df = load_runs(tmp_path)
    assert len(df) == 1 and df["cost_usd"].sum() == pytest.approx(1.40)
    assert bool(df["adopted"].iloc[0]), "the row says it was adopted"
