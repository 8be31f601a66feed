"""Issue 12, items 1–9: never pay twice, round two. Each test reproduces the failure the issue reports.

Everything goes through the real fal-client over the emulator's HTTP and real parquet; new
kling_lab APIs are imported inside the tests that use them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kling_lab.backends.emulator import EmulatorConfig
from kling_lab.backends.emulator.queue import job_key
from kling_lab.runner.api import resume, run
from kling_lab.runner.journal import Journal
from kling_lab.runner.retry import Backoff
from kling_lab.store.run_store import load_runs
from kling_lab.sweep import Sweep

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(progress=False, backoff=Backoff(0.01, 0.05))


def sweep_of(n: int, name: str, prompt: str = "a paper boat on a pond") -> Sweep:
    cfgs = [round(0.1 + 0.8 * i / max(1, n - 1), 3) for i in range(n)]
    return Sweep.grid(name, prompt=prompt, cfg_scale=cfgs)


def input_hash(item) -> str:
    """The emulator's key for an item's input (what its fault decisions hash)."""
    from kling_lab.backends.emulator.video import VideoEndpoint

    request = item.request
    endpoint = VideoEndpoint(request.model, request.endpoint)
    return endpoint.input_hash(endpoint.parse(request.sent_arguments({})))


def seed_losing_first_submit(item, others=(), rate: float = 0.5) -> int:
    """A seed whose first submit of ``item`` loses its answer, its second does not, nor the first of ``others``."""
    key = input_hash(item)
    kept = [job_key(key, 1), *(job_key(input_hash(o), 0) for o in others)]
    return next(
        s
        for s in range(5000)
        if EmulatorConfig(seed=s).chance(rate, job_key(key, 0), "lost_submit")
        and not any(EmulatorConfig(seed=s).chance(rate, k, "lost_submit") for k in kept)
    )


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kling_lab.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def real_rows(store: Path):
    df = load_runs(store)
    return df[df["cache_hit"] != True]  # noqa: E712


# -- item 1: a failed download stays collectable ---------------------------------------------------
def test_download_outage_leaves_paid_requests_collectable_and_never_pays_again(emulator, tmp_path):
    """Repro: 503 on every download → rows failed at $1.40, journal done, resume finds nothing,
    the re-run pays again ($5.60 for 2 clips)."""
    emulator.configure(rate_503=1.0, fault_calls={"download"})
    sweep = sweep_of(2, "outage")
    first = run(sweep, store=tmp_path, download_attempts=2, **FAST)
    assert first.count("ok") == 0 and first.count("failed") == 0, first.summary()
    assert first.pending == 2 and "kling-lab resume" in first.summary()
    pending = Journal(tmp_path / "journal").pending()
    assert len(pending) == 2 and all(p.video_url for p in pending.values()), "the video URL is journaled"
    assert all(p.download_failed for p in pending.values())
    assert not (tmp_path / "runs").exists() or load_runs(tmp_path).empty, "no final row for a paid request"

    emulator.configure(rate_503=0.0)
    collected = resume(store=tmp_path, **FAST)
    assert collected.count("ok") == 2 and collected.submitted == 0
    again = run(sweep, store=tmp_path, **FAST)
    assert again.submitted == 0 and again.cache_hits == 2
    stats = emulator.stats()
    assert stats["submissions"] == 2 and stats["billed_usd"] == pytest.approx(2.80)
    assert real_rows(tmp_path)["cost_usd"].sum() == pytest.approx(2.80)


def test_a_request_left_for_resume_keeps_its_price_and_frees_the_waiters(emulator, tmp_path):
    """Its price stays counted against the cap (it is paid), but no longer as in flight: a request waiting
    for room is told at once that none will come, instead of waiting for ever."""
    from kling_lab.runner.api import run_async

    emulator.configure(rate_503=1.0, fault_calls={"download"})
    sweep = sweep_of(2, "waiting")

    async def bounded():
        return await asyncio.wait_for(
            run_async(sweep, store=tmp_path, max_cost_usd=1.40, concurrency=2, download_attempts=1, **FAST), 60
        )

    result = asyncio.run(bounded())
    assert result.pending == 1 and result.count("skipped_budget") == 1, result.summary()
    assert "max cost $1.40" in next(r["error"] for r in result.rows if r["status"] == "skipped_budget")


def test_always_truncated_video_is_left_pending_with_the_bytes_received(emulator, tmp_path):
    emulator.configure(rate_truncated_video=1.0)
    events = []

    class Watch:
        def on_event(self, event):
            events.append(event)

    result = run(sweep_of(1, "cut"), store=tmp_path, download_attempts=2, observers=[Watch()], **FAST)
    assert result.pending == 1 and result.count("failed") == 0
    [left] = [e for e in events if e.state == "left_pending"]
    assert "bytes" in left.message and "bad_video" not in left.message, left.message
    [entry] = Journal(tmp_path / "journal").pending().values()
    assert entry.download_failed["error_type"] == "truncated", "a cut connection is not a bad video"
    emulator.configure(rate_truncated_video=0.0)
    assert resume(store=tmp_path, **FAST).count("ok") == 1
    assert emulator.stats()["submissions"] == 1


def test_expired_result_still_downloads_from_the_journaled_url(emulator, tmp_path):
    """fal keeps a result about an hour but its video for days: the URL journaled at once is enough."""
    emulator.configure(rate_503=1.0, fault_calls={"download"})
    run(sweep_of(1, "ttl"), store=tmp_path, download_attempts=1, **FAST)
    emulator.configure(rate_503=0.0, result_ttl_s=0.001)
    results_before = emulator.stats()["result_calls"]
    assert resume(store=tmp_path, **FAST).count("ok") == 1
    assert emulator.stats()["result_calls"] == results_before, "no need to ask fal for the result again"


def test_a_video_fal_no_longer_has_is_final_and_says_so(emulator, tmp_path):
    emulator.configure(rate_503=1.0, fault_calls={"download"})
    run(sweep_of(1, "gone"), store=tmp_path, download_attempts=1, **FAST)
    emulator.configure(rate_503=0.0, result_ttl_s=0.001, file_ttl_s=0.001)
    done = resume(store=tmp_path, **FAST)
    [row] = done.rows
    assert row["status"] == "failed" and row["error_type"] == "video_expired"
    assert row["cost_usd"] == pytest.approx(1.40), "fal made and billed it; the row says it is lost"
    assert Journal(tmp_path / "journal").pending() == {}


# -- item 2: a refusal is not submitted again ----------------------------------------------------------
def test_content_policy_refusal_is_skipped_on_a_rerun_unless_asked(emulator, tmp_path):
    sweep = Sweep.from_list([{"prompt": "a calm lake"}, {"prompt": "a [blocked] scene"}], name="policy")
    blocked = next(i.fingerprint for i in sweep if "blocked" in i.request.prompt)
    run(sweep, store=tmp_path, **FAST)
    again = run(sweep, store=tmp_path, **FAST)
    assert emulator.stats()["submissions_by_fingerprint"][blocked] == 1, "the re-run did not pay again"
    assert again.count("skipped_final") == 1 and "refused the same input before" in again.summary()
    skip = next(r for r in again.rows if r["fingerprint"] == blocked)
    assert skip["status"] == "skipped_final" and skip["error_type"] == "content_policy_violation"
    assert skip["cost_usd"] == 0 and "--retry-failed" in skip["error"] and skip["source_run_id"]
    logged = load_runs(tmp_path)
    assert (logged["status"] == "skipped_final").sum() == 1, "the skip is recorded in the log"

    third = run(sweep, store=tmp_path, retry_failed=True, **FAST)
    assert third.submitted == 1 and emulator.stats()["submissions_by_fingerprint"][blocked] == 2


def test_a_failure_reported_without_its_type_ends_failed_without_asking_for_a_result(emulator, tmp_path):
    """fal-client reads a COMPLETED status's error and error_type as optional: an error alone is a failure."""
    emulator.configure(typed_completion_errors=False)
    [row] = run(Sweep.from_list([{"prompt": "a [blocked] kite"}], name="untyped"), store=tmp_path, **FAST).rows
    assert row["status"] == "failed" and row["error_type"] == "model_error" and row["cost_usd"] == 0
    assert "content" in row["error"] and emulator.stats()["result_calls"] == 0


def test_an_infrastructure_failure_is_retried_by_a_rerun(emulator, tmp_path):
    emulator.configure(rate_500=1.0, fault_calls={"submit"})
    sweep = sweep_of(1, "infra")
    first = run(sweep, store=tmp_path, max_submit_attempts=2, **FAST)
    assert first.rows[0]["error_type"] == "internal_server_error"
    emulator.configure(rate_500=0.0)
    assert run(sweep, store=tmp_path, **FAST).count("ok") == 1


def test_which_error_types_are_final():
    from kling_lab.runner.outcomes import is_final

    for final in ("content_policy_violation", "image_too_large", "less_than_equal", "some_new_model_error"):
        assert is_final(final), final
    for retry in ("internal_server_error", "runner_scheduling_failure", "request_timeout", "timeout", "http_502"):
        assert not is_final(retry), retry
    assert not is_final(None) and not is_final("rate_limited") and not is_final("result_expired")


# -- item 3: the cap covers the sweep across runs; ambiguous submits stay reserved -------------------------
def test_max_cost_covers_the_sweep_across_runs(emulator, tmp_path):
    """Repro: a sweep capped at $8.40, stopped and run again, spent $11.20."""
    sweep = sweep_of(8, "capped")
    first = run(sweep, store=tmp_path, max_cost_usd=4.20, **FAST)
    assert first.count("ok") == 3
    second = run(sweep, store=tmp_path, max_cost_usd=8.40, **FAST)
    assert second.submitted == 3 and second.count("skipped_budget") == 2
    skipped = next(r for r in second.rows if r["status"] == "skipped_budget")
    assert "earlier runs" in skipped["error"]
    assert emulator.stats()["billed_usd"] == pytest.approx(8.40)


def test_an_unanswered_submit_keeps_its_price_reserved(emulator, tmp_path):
    """Repro: one run with lost submit answers billed $9.80 under an $8.40 cap (the orphan was not counted).
    Here fal's platform API is closed to the key: the orphan cannot be found, so its price stays reserved."""
    sweep = sweep_of(2, "lost")
    first, second = sweep.items
    emulator.configure(seed=seed_losing_first_submit(first, [second]), rate_lost_submit=0.5, platform_scope="none")
    result = run(sweep, store=tmp_path, max_cost_usd=2.80, orphan_wait_s=0.0, **FAST)
    stats = emulator.stats()
    assert stats["billed_usd"] <= 2.80 + 1e-9, stats
    assert stats["submit_calls"] == 2, "the unanswered POST was not sent again blindly"
    assert result.held == 1 and "$1.40 stays reserved" in result.summary()
    [entry] = Journal(tmp_path / "journal").ambiguous()
    assert entry.fingerprint == first.fingerprint and entry.price_usd == pytest.approx(1.40)
    # A re-run of the sweep counts the reserved price: nothing more fits under $2.80.
    again = run(sweep, store=tmp_path, max_cost_usd=2.80, orphan_wait_s=0.0, **FAST)
    assert again.submitted == 0 and emulator.stats()["billed_usd"] <= 2.80 + 1e-9


def test_an_unanswered_submits_price_counts_against_the_cap_in_the_same_run(emulator, tmp_path):
    """The held price of a lost submit (fal created it and bills it) counts against the cap at once: under a
    cap of two prices, one more request is paid, and neither another attempt of the lost one nor a third fits."""
    sweep = sweep_of(3, "held")
    first, *others = sweep.items
    emulator.configure(seed=seed_losing_first_submit(first, others), rate_lost_submit=0.5, platform_scope="none")
    result = run(sweep, store=tmp_path, max_cost_usd=2.80, orphan_wait_s=0.0, concurrency=3, **FAST)
    stats = emulator.stats()
    assert stats["billed_usd"] <= 2.80 + 1e-9 and stats["submissions"] == 2, stats
    assert result.held == 1 and result.count("ok") == 1 and result.count("skipped_budget") == 2, result.summary()


def test_a_retry_after_an_unanswered_submit_books_its_price_like_any_request(emulator, tmp_path):
    """The retry reserves the price again (the first attempt's stays held for its orphan) and settles it
    when its row is logged: the next request then sees the cap is reached, instead of waiting for ever."""
    sweep = sweep_of(2, "retried")
    first, second = sweep.items
    emulator.configure(seed=seed_losing_first_submit(first, [second]), rate_lost_submit=0.5, platform_scope="none")
    from kling_lab.runner.api import run_async

    async def bounded():  # a reservation never settled makes the second request wait for ever: fail instead
        return await asyncio.wait_for(
            run_async(sweep, store=tmp_path, max_cost_usd=2.80, orphan_wait_s=0.0, concurrency=1, **FAST), 60
        )

    result = asyncio.run(bounded())
    assert result.held == 1 and result.count("ok") == 1 and result.count("skipped_budget") == 1, result.summary()
    done = next(r for r in result.rows if r["status"] == "ok")
    assert done["fingerprint"] == first.fingerprint and done["attempts"] == 2 and done["cost_usd"] == 1.40
    assert emulator.stats()["billed_usd"] <= 2.80 + 1e-9


def test_an_unanswered_submit_that_is_not_tried_again_says_where_its_money_is(emulator, tmp_path):
    sweep = sweep_of(2, "once")
    first, second = sweep.items
    emulator.configure(seed=seed_losing_first_submit(first, [second]), rate_lost_submit=0.5, platform_scope="none")
    result = run(sweep, store=tmp_path, max_submit_attempts=1, orphan_wait_s=0.0, **FAST)
    [row] = [r for r in result.rows if r["status"] == "failed"]
    assert row["error_type"] == "submit_unanswered" and row["cost_usd"] == 0
    assert "its price stays reserved and `kling-lab reconcile` looks for it" in row["error"]
    emulator.configure(rate_lost_submit=0.0, rate_500=1.0, fault_calls={"submit"})
    [answered] = run(sweep_of(1, "answered"), store=tmp_path, max_submit_attempts=1, **FAST).rows
    assert answered["error_type"] == "internal_server_error" and answered["status"] == "failed"
    assert "reconcile" not in answered["error"], "an answered submit left nothing at fal"


# -- items 8 and 9: fallbacks off; one POST per attempt, Retry-After honoured ---------------------------------
def test_every_submit_disables_model_fallbacks(emulator, tmp_path):
    run(sweep_of(3, "nofallback"), store=tmp_path, **FAST)
    stats = emulator.stats()
    assert stats["submissions"] == 3 and stats["submissions_with_fallbacks"] == 0
    assert load_runs(tmp_path)["fallbacks_disabled"].all()


def test_attempts_count_every_submit_post_and_429s_wait_for_retry_after(emulator, tmp_path):
    """Repro: fal-client re-sent a 429'd submit ~0.1 s later by itself; ``attempts`` said 1 for 2 POSTs."""
    emulator.configure(rate_429=1.0, fault_calls={"submit"}, retry_after_s=0.05)
    [row] = run(sweep_of(1, "limited"), store=tmp_path, max_submit_attempts=3, **FAST).rows
    stats = emulator.stats()
    assert row["error_type"] == "rate_limited" and row["attempts"] == 3
    assert stats["submit_calls"] == 3, "every POST is one of kling_lab's attempts (each waits out Retry-After)"
    assert stats["submissions"] == 0


def test_the_emulators_retry_after_is_realistic(emulator):
    assert EmulatorConfig().retry_after_s >= 1.0


# -- item 4: lost submits are found through fal's platform API; reconcile ----------------------------------
def test_a_lost_submit_answer_is_found_at_fal_and_adopted_instead_of_paid_twice(emulator, tmp_path):
    """Repro: fal-client re-sent a submit whose answer was lost: a second paid job, the first id never seen."""
    sweep = sweep_of(2, "adopt")
    first, second = sweep.items
    emulator.configure(seed=seed_losing_first_submit(first, [second]), rate_lost_submit=0.5)
    result = run(sweep, store=tmp_path, orphan_wait_s=30.0, **FAST)
    stats = emulator.stats()
    assert stats["faults"] == {"lost_submit": 1} and stats["submissions"] == 2, "no second job for the lost one"
    assert result.count("ok") == 2 and result.held == 0 and result.submitted == 2
    adopted = next(r for r in result.rows if r["fingerprint"] == first.fingerprint)
    assert adopted["adopted"] is True and adopted["cost_usd"] == pytest.approx(1.40)
    assert Journal(tmp_path / "journal").ambiguous() == []


def test_the_orphan_is_looked_for_from_when_its_submit_was_sent(emulator, tmp_path, monkeypatch):
    """The answer was lost after a long wait: fal dates the job from when the POST arrived, so the search
    window opens at the intent, not when the loss was noticed (here the clock slack is cut to 0.5 s
    and the answer waits 1.5 s)."""
    from kling_lab.runner import orphans
    from kling_lab.runner.api import run_async

    monkeypatch.setattr(orphans, "CLOCK_SLACK_S", 0.5)
    sweep = sweep_of(1, "slow-answer")
    emulator.configure(seed=seed_losing_first_submit(sweep.items[0]), rate_lost_submit=0.5, hold_submit_responses=True)

    async def main():
        task = asyncio.ensure_future(run_async(sweep, store=tmp_path, orphan_wait_s=10.0, **FAST))
        while emulator.stats()["submits_held"] < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.5)
        emulator.configure(hold_submit_responses=False)  # ... and then the connection drops
        return await asyncio.wait_for(task, 120)

    [row] = asyncio.run(main()).rows
    assert row["status"] == "ok" and row["adopted"] is True
    assert emulator.stats()["submissions"] == 1, "found and adopted, not sent again"


def test_reconcile_finds_an_orphan_and_resume_collects_it(emulator, tmp_path):
    sweep = sweep_of(2, "orphan")
    first, second = sweep.items
    emulator.configure(seed=seed_losing_first_submit(first, [second]), rate_lost_submit=0.5, platform_scope="none")
    result = run(sweep, store=tmp_path, orphan_wait_s=0.0, **FAST)
    assert result.count("ok") == 2 and result.held == 1, result.summary()
    assert emulator.stats()["submissions"] == 3, "without the platform API the lost one was submitted again"

    closed = cli("reconcile", "--store", str(tmp_path))
    assert closed.returncode == 2 and len(closed.stderr.strip().splitlines()) == 1, closed.stderr
    assert "may list requests" in closed.stderr

    emulator.configure(platform_scope="api")  # the ordinary key: requests yes, usage no
    found = cli("reconcile", "--store", str(tmp_path))
    assert found.returncode == 1, found.stdout + found.stderr
    assert "orphans (at fal, unknown here): 1" in found.stdout and "adopted" in found.stdout
    assert "Admin-scope" in found.stdout
    collected = resume(store=tmp_path, **FAST)
    assert collected.count("ok") == 1 and collected.submitted == 0
    rows = real_rows(tmp_path)
    assert rows["adopted"].fillna(False).sum() == 1 and len(rows) == 3
    assert set(emulator.stats()["billed_by_request"]) == set(rows["request_id"]), "every paid job is logged"

    emulator.configure(platform_scope="admin")
    clean = cli("reconcile", "--store", str(tmp_path))
    assert clean.returncode == 0, clean.stdout
    assert "billed by fal: $4.20; logged: $4.20" in clean.stdout


def test_the_emulated_platform_api_pages_and_scopes(emulator, tmp_path):
    import asyncio
    from datetime import timedelta

    import httpx

    from kling_lab.backends.emulator.backend import EmulatorBackend
    from kling_lab.backends.platform import PlatformAccessDenied
    from kling_lab.util.clock import utcnow

    run(sweep_of(3, "listed"), store=tmp_path, **FAST)
    platform = EmulatorBackend().platform()
    endpoint = load_runs(tmp_path)["endpoint"].iloc[0]
    records = asyncio.run(platform.requests_by_endpoint([endpoint], utcnow() - timedelta(hours=1)))
    assert {r.request_id for r in records} == set(load_runs(tmp_path)["request_id"])
    assert all(r.status_code == 200 and r.json_input and r.json_input["prompt"] for r in records)
    usage = asyncio.run(platform.usage([endpoint], utcnow() - timedelta(hours=1)))
    assert sum(u.cost_usd for u in usage) == pytest.approx(4.20)

    url = f"{emulator.base_url}/v1/models/requests/by-endpoint"
    auth = {"Authorization": "Key x"}
    pages, cursor = [], None
    with httpx.Client() as http:
        assert http.get(url, params={"endpoint_id": endpoint}).status_code == 401
        while True:
            params = {"endpoint_id": endpoint, "limit": 1, **({"cursor": cursor} if cursor else {})}
            body = http.get(url, params=params, headers=auth).json()
            pages.append(body["items"])
            if not body["has_more"]:
                break
            cursor = body["next_cursor"]
    assert [len(p) for p in pages] == [1, 1, 1] and "json_input" not in pages[0][0]
    emulator.configure(platform_scope="api")
    with pytest.raises(PlatformAccessDenied):
        asyncio.run(platform.usage([endpoint], utcnow() - timedelta(hours=1)))


# -- item 5: the journal cannot be written after a submit ---------------------------------------------------
def test_a_full_disk_after_submit_loses_no_request_id(emulator, tmp_path):
    """Repro: on a full disk two paid requests were left with no journal entry and no row, behind a
    traceback and "Task was destroyed but it is pending". Here every file the run writes may hold
    2,500 bytes (RLIMIT_FSIZE: the kernel answers EFBIG, as a full disk answers ENOSPC)."""
    import resource
    import shlex

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2500, 2500))

    emulator.configure(service_time_s=0.3)
    (tmp_path / "s.yaml").write_text(
        "name: full\nprompt: a kite over a beach\ngrid: {cfg_scale: [0.1, 0.3, 0.5, 0.7]}\n"
    )
    store = tmp_path / "store"
    full = subprocess.run(
        [
            sys.executable,
            "-m",
            "kling_lab.cli",
            "run",
            str(tmp_path / "s.yaml"),
            "--store",
            str(store),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        preexec_fn=small_files,
    )
    assert full.returncode == 1, full.stderr
    assert "Traceback" not in full.stderr and "Task was destroyed" not in full.stderr, full.stderr
    error = [line for line in full.stderr.splitlines() if line.startswith("kling-lab: error:")]
    assert len(error) == 1 and "the journal could not be written (File too large)" in error[0], full.stderr
    submitted = emulator.stats()["submissions"]
    assert submitted >= 1
    command = shlex.split(error[0].split("Once there is space: ", 1)[1].split(";")[0])
    assert command[:2] == ["kling-lab", "resume"]
    rescued = cli(*command[1:], "--no-progress")
    assert rescued.returncode in (0, 1), rescued.stderr
    rows = real_rows(store)
    assert len(rows) == submitted and rows["request_id"].is_unique, "every submitted request has its row"
    assert set(emulator.stats()["billed_by_request"]) <= set(rows["request_id"])


# -- item 6: claims and the journal's owner are OS locks -------------------------------------------------------
def test_a_stale_claim_naming_a_live_process_does_not_block_a_run(emulator, tmp_path):
    """Repro: {"pid": <any live pid>, "host": <this host>} in a claim file made runs wait forever."""
    sweep = sweep_of(1, "stale")
    claims = tmp_path / "journal" / "claims"
    claims.mkdir(parents=True)
    stale = json.dumps({"pid": os.getppid(), "host": socket.gethostname()})
    for suffix in (".claim", ".lock"):
        (claims / f"emulator-{sweep.items[0].fingerprint}{suffix}").write_text(stale)
    result = run(sweep, store=tmp_path, claim_timeout_s=30.0, **FAST)
    assert result.count("ok") == 1 and result.busy == 0


def test_waiting_for_a_live_claim_says_who_and_gives_up(emulator, tmp_path, caplog):
    sweep = sweep_of(1, "busy")
    key = f"emulator-{sweep.items[0].fingerprint}"
    code = (
        "import pathlib, time; from kling_lab.runner.claims import Claims;"
        f"c = Claims(pathlib.Path({str(tmp_path / 'journal' / 'claims')!r})); print(c.try_acquire({key!r}), flush=True);"
        "time.sleep(600)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "True"
        with caplog.at_level("WARNING", logger="kling_lab.runner"):
            result = run(sweep, store=tmp_path, claim_timeout_s=1.0, **FAST)
    finally:
        holder.kill()
        holder.wait(30)
    assert result.busy == 1 and result.submitted == 0 and "not submitted" in result.summary()
    assert f"waiting for process {holder.pid} on {socket.gethostname()}" in caplog.text
    assert emulator.stats()["submissions"] == 0


def test_resume_collects_a_dead_runners_requests_even_when_its_pid_is_reused(emulator, tmp_path):
    """Repro: resume skipped journaled requests whose file named a live PID (reused after a crash)."""
    emulator.configure(rate_503=1.0, fault_calls={"download"})
    run(sweep_of(1, "pidreuse"), store=tmp_path, download_attempts=1, **FAST)
    emulator.configure(rate_503=0.0)
    [journal_file] = (tmp_path / "journal").glob("*.jsonl")
    stamp, _pid, rest = journal_file.name.split("-", 2)
    journal_file.rename(journal_file.with_name(f"{stamp}-{os.getppid()}-{rest}"))  # a live process's pid
    assert resume(store=tmp_path, **FAST).count("ok") == 1


# -- item 7: a kill between download and store ----------------------------------------------------------------
@pytest.mark.parametrize("journaled", [False, True], ids=["before-journal", "after-journal"])
def test_a_verified_download_left_in_tmp_is_used_not_fetched_again(emulator, tmp_path, journaled):
    """Repro: killed with a verified file in tmp/, the resume fetched the video again and left the file."""
    import hashlib

    import httpx

    emulator.configure(rate_503=1.0, fault_calls={"download"})
    run(sweep_of(1, "killed"), store=tmp_path, download_attempts=1, **FAST)
    emulator.configure(rate_503=0.0)
    journal = Journal(tmp_path / "journal")
    [entry] = journal.pending().values()
    data = httpx.get(entry.video_url).content  # what the killed run had fetched
    (tmp_path / "tmp" / f"dl-{entry.request_id}.mp4").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    if journaled:  # killed after journaling the download, before moving the file into videos/
        journal.downloaded(request_id=entry.request_id, video_path=f"videos/{sha[:2]}/{sha}.mp4", video_sha256=sha)
    journal.close()
    downloads = sum(emulator.stats()["downloads"].values())
    done = resume(store=tmp_path, **FAST)
    assert done.count("ok") == 1 and done.rows[0]["video_sha256"] == sha
    assert sum(emulator.stats()["downloads"].values()) == downloads, "the video was not fetched again"
    assert not list((tmp_path / "tmp").glob("dl-*")), "nothing left behind in tmp/"


# -- item 3b: a store-wide budget shared by every runner ---------------------------------------------------
def test_a_store_budget_holds_across_sweeps_people_and_concurrent_runners(emulator, tmp_path):
    store = tmp_path / "team"
    assert cli("budget", "set", "2.80", "--store", str(store)).returncode == 0
    first = run(sweep_of(2, "alpha"), store=store, **FAST)
    second = run(sweep_of(2, "beta", prompt="a red bicycle"), store=store, **FAST)
    assert first.count("ok") == 2 and second.count("skipped_budget") == 2
    assert "the store's budget ($2.80 in all) would be exceeded" in second.rows[0]["error"]
    shown = cli("budget", "--store", str(store), "--backend", "emulator")
    assert "$2.80 logged" in shown.stdout and "$0.00 left" in shown.stdout, shown.stdout

    # Per user: another person has their own $2.80.
    assert cli("budget", "set", "2.80", "--per-user", "--store", str(store)).returncode == 0
    other = cli(
        "run", str(_yaml(tmp_path, "gamma", 2)), "--store", str(store), "--no-progress", env={"KLING_LAB_USER": "bo"}
    )
    assert other.returncode == 0, other.stderr
    again = cli(
        "run", str(_yaml(tmp_path, "delta", 1)), "--store", str(store), "--no-progress", env={"KLING_LAB_USER": "bo"}
    )
    assert again.returncode == 1 and "skipped" in again.stdout

    # Two runners at once against $4.20 left: together they never pass it.
    emulator.configure(service_time_s=0.3)
    shared = tmp_path / "shared"
    assert cli("budget", "set", "4.20", "--store", str(shared)).returncode == 0
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kling_lab.cli", "run", str(_yaml(tmp_path, name, 3)), "--store", str(shared)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for name in ("left", "right")
    ]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):  # 1: some were skipped; a crash would lose rows
        assert proc.returncode in (0, 1) and "Traceback" not in err, err
    rows = real_rows(shared)
    assert rows["cost_usd"].sum() <= 4.20 + 1e-9 and (rows["status"] == "ok").sum() == 3
    assert (rows["status"] == "skipped_budget").sum() == 3


def _yaml(tmp_path: Path, name: str, n: int) -> Path:
    path = tmp_path / f"{name}.yaml"
    cfgs = ", ".join(f"{0.1 + 0.2 * i:.1f}" for i in range(n))
    path.write_text(f"name: {name}\nprompt: a {name} balloon\ngrid: {{cfg_scale: [{cfgs}]}}\n")
    return path
