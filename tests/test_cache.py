"""The cache and the journal decide what is never paid for twice; each rule here has a test that breaks with it.

- A cache hit is an ok row of the same backend and endpoint whose video is still in the store.
- A journaled request whose row reached the log (but not its journal ``done``) is not collected again.
- A journaled download whose video is gone is fetched again by request id, never submitted again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from kling_lab.backends import _REGISTRY, register_backend
from kling_lab.backends.emulator.backend import EmulatorBackend
from kling_lab.request import ENDPOINT
from kling_lab.runner.api import resume, run
from kling_lab.runner.journal import Journal
from kling_lab.store.run_store import RunStore, load_runs
from kling_lab.sweep import Sweep

SWEEP = Sweep.grid("cached", prompt="a paper boat on a puddle", cfg_scale=[0.3, 0.7])
ONE = Sweep.grid("one", prompt="a paper boat on a puddle", cfg_scale=0.3)


class OtherEmulator(EmulatorBackend):
    """A second backend on the same emulator (another proxy or account): its own name, the same endpoint."""

    name = "emulator-b"


@pytest.fixture
def second_backend() -> Iterator[str]:
    register_backend(OtherEmulator.name, lambda **options: OtherEmulator(**options))
    yield OtherEmulator.name
    _REGISTRY.pop(OtherEmulator.name, None)


def journal_again(store: Path, row: dict) -> None:
    """Journal ``row``'s request as submitted again with no ``done``: a crash between the row
    reaching the log and its ``done`` event leaves exactly this behind."""
    journal = Journal(store / "journal")
    journal.submitted(
        request_id=row["request_id"],
        fingerprint=row["fingerprint"],
        backend=row["backend"],
        endpoint=row["endpoint"],
        input={"prompt": row["prompt"], "cfg_scale": row["cfg_scale"]},
        submitted_at=row["submitted_at"],
        sweep={"sweep_id": row["sweep_id"], "experiment": row["experiment"], "sweep_index": 0, "repeat": 0},
    )
    journal.close()


def test_the_cache_is_per_backend(emulator, tmp_path, second_backend):
    first = run(SWEEP, store=tmp_path, progress=False)
    assert first.submitted == 2
    other = run(SWEEP, store=tmp_path, progress=False, backend=second_backend)
    assert other.submitted == 2 and other.cache_hits == 0, "another backend's results are never reused"
    assert emulator.stats()["submissions"] == 4
    again = run(SWEEP, store=tmp_path, progress=False, backend=second_backend)
    assert again.submitted == 0 and again.cache_hits == 2
    hits = load_runs(tmp_path).query("cache_hit == True")
    assert set(hits["backend"]) == {second_backend}
    sources = load_runs(tmp_path).set_index("run_id").loc[hits["source_run_id"], "backend"]
    assert set(sources) == {second_backend}, "a hit points at a row of its own backend"


def test_a_cached_row_whose_video_was_deleted_is_paid_for_again_with_a_video(emulator, tmp_path):
    run(SWEEP, store=tmp_path, progress=False)
    store = RunStore(tmp_path)
    gone, kept = load_runs(tmp_path).sort_values("cfg_scale")["video_path"]
    Path(gone).unlink()
    again = run(SWEEP, store=tmp_path, progress=False)
    assert again.submitted == 1 and again.cache_hits == 1, "only the clip without its video is made again"
    assert emulator.stats()["submissions"] == 3
    newest = load_runs(tmp_path).sort_values("logged_at").groupby("fingerprint").tail(1)
    assert all(store.has_video(p) for p in newest["video_path"])
    assert newest["width"].notna().all() and (newest["width"] > 0).all(), "the media hook probed every clip"
    hit = newest[newest["cache_hit"] == True]  # noqa: E712
    assert list(hit["video_path"]) == [kept]


def test_a_logged_row_without_its_journal_done_is_not_collected_again(emulator, tmp_path):
    run(ONE, store=tmp_path, progress=False)
    row = load_runs(tmp_path).iloc[0].to_dict()
    journal_again(tmp_path, row)
    assert list(Journal(tmp_path / "journal").pending()) == [row["request_id"]]
    before = emulator.stats()
    result = resume(store=tmp_path, progress=False)
    assert result.rows == [] and result.submitted == 0
    after = emulator.stats()
    assert after["status_calls"] == before["status_calls"] and after["downloads"] == before["downloads"]
    assert len(load_runs(tmp_path)) == 1
    assert Journal(tmp_path / "journal").pending() == {}, "marked done instead of being collected twice"


def test_a_journaled_download_whose_video_is_gone_is_fetched_again_not_resubmitted(emulator, tmp_path):
    run(ONE, store=tmp_path, progress=False)
    row = load_runs(tmp_path).iloc[0].to_dict()
    # A crash after the download but before the row: the journal says downloaded, the row is not there.
    for part in RunStore(tmp_path).part_files():
        (tmp_path / part).unlink()
    journal_again(tmp_path, row)
    journal = Journal(tmp_path / "journal")
    journal.downloaded(
        request_id=row["request_id"],
        video_path=RunStore(tmp_path).video_relpath(row["video_sha256"]),
        video_sha256=row["video_sha256"],
        video_bytes=row["video_bytes"],
        video_url=row["video_url"],
        download_s=row["download_s"],
    )
    journal.close()
    Path(row["video_path"]).unlink()  # ... and the video went missing since
    result = resume(store=tmp_path, progress=False)
    assert result.count("ok") == 1 and result.submitted == 0
    again = load_runs(tmp_path).iloc[0]
    assert again["request_id"] == row["request_id"] and RunStore(tmp_path).has_video(again["video_path"])
    stats = emulator.stats()
    assert stats["submissions"] == 1 and stats["downloads"] == {row["request_id"]: 2}


def test_the_cache_on_a_remote_store_needs_the_remote_video(emulator, tmp_path, monkeypatch):
    import uuid

    import fsspec

    monkeypatch.setenv("KLING_LAB_CACHE", str(tmp_path / "cache"))
    location = f"memory://kling-lab-test-{uuid.uuid4().hex}/store"
    run(SWEEP, store=location, progress=False)
    again = run(SWEEP, store=location, progress=False)
    assert again.submitted == 0 and again.cache_hits == 2, "the remote videos are found by one listing"
    store = RunStore(location)
    gone = sorted(store.video_keys())[0]
    fsspec.filesystem("memory").rm(f"{location}/{gone}")
    (store.root / gone).unlink()  # and from the local cache
    third = run(SWEEP, store=location, progress=False)
    assert third.submitted == 1 and third.cache_hits == 1 and emulator.stats()["submissions"] == 3


def submit_directly(item) -> str:
    """Submit ``item`` to the emulator outside any runner (what another process did); its request id."""

    async def submit() -> str:
        backend = EmulatorBackend()
        try:
            return await backend.submit(
                item.request.endpoint.id, item.request.arguments(), fingerprint=item.fingerprint
            )
        finally:
            await backend.aclose()

    return asyncio.run(submit())


def journal_file(store: Path, pid: int, request_id: str, item) -> None:
    """A journal file as the process ``pid`` would have written it, holding one submitted request."""
    import json

    (store / "journal").mkdir(parents=True, exist_ok=True)
    event = {
        "event": "submitted",
        "request_id": request_id,
        "fingerprint": item.fingerprint,
        "backend": "emulator",
        "endpoint": ENDPOINT,
        "input": item.request.arguments(),
        "submitted_at": "2026-12-01T00:00:00+00:00",
        "sweep": {},  # old journals have no repeat
    }
    (store / "journal" / f"20260101T00000{len(request_id) % 10}-{pid}-{request_id[:6]}.jsonl").write_text(
        json.dumps(event) + "\n"
    )


def test_requests_of_live_runners_are_skipped_and_the_rest_re_attached(emulator, tmp_path):
    import subprocess
    import sys

    first, second = SWEEP.items
    journal_file(tmp_path, 12345, "a-live-runners-request", first)  # listed first
    (live_journal,) = (tmp_path / "journal").glob("*.jsonl")
    holds_its_lock = (  # a live runner holds the lock on its journal (a pid in a name proves nothing)
        "import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB);"
        " print('locked', flush=True); sys.stdin.read()"
    )
    live = subprocess.Popen(
        [sys.executable, "-c", holds_its_lock, str(live_journal)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert live.stdout is not None and live.stdout.readline() == b"locked\n"
        paid = submit_directly(second)
        journal_file(tmp_path, 999_999_999, paid, second)  # a dead runner's: collect it
        result = run(SWEEP, store=tmp_path, progress=False)
    finally:
        live.communicate(b"")
    rows = load_runs(tmp_path).set_index("fingerprint")
    assert rows.loc[second.fingerprint, "request_id"] == paid and result.count("ok") == 2
    assert rows.loc[second.fingerprint, "repeat"] == 0
    assert emulator.stats()["submissions_by_fingerprint"][second.fingerprint] == 1, "re-attached, not resubmitted"


def test_resume_collects_only_this_backends_requests(emulator, tmp_path, second_backend):
    item = ONE.items[0]
    paid = submit_directly(item)
    journal_file(tmp_path, 999_999_999, paid, item)  # journaled by the "emulator" backend
    other = resume(store=tmp_path, progress=False, backend=second_backend)
    assert other.rows == [] and list(Journal(tmp_path / "journal").pending()) == [paid]
    mine = resume(store=tmp_path, progress=False)
    assert mine.count("ok") == 1 and load_runs(tmp_path).iloc[0]["repeat"] == 0


def test_every_paid_id_journaled_for_one_item_is_collected(emulator, tmp_path):
    """A lost submit response can leave two paid jobs for one item: a re-run collects both, pays nothing."""
    item = ONE.items[0]
    paid = [submit_directly(item), submit_directly(item)]
    for n, request_id in enumerate(paid):
        journal_file(tmp_path, 999_999_990 + n, request_id, item)
    result = run(ONE, store=tmp_path, progress=False)
    assert result.count("ok") == 2 and result.submitted == 0
    assert sorted(load_runs(tmp_path)["request_id"]) == sorted(paid)
    assert emulator.stats()["submissions"] == 2


def test_resume_passes_over_a_live_runners_request_and_an_unknown_model_and_collects_the_rest(emulator, tmp_path):
    import json
    import subprocess
    import sys

    first, second = SWEEP.items
    journal = tmp_path / "journal"
    journal.mkdir()
    event = {"event": "submitted", "backend": "emulator", "submitted_at": "2026-12-01T00:00:00+00:00", "sweep": {}}
    (journal / "20260101T000001-12345-live00.jsonl").write_text(
        json.dumps(
            {
                **event,
                "request_id": "live-1",
                "fingerprint": first.fingerprint,
                "endpoint": ENDPOINT,
                "input": first.request.arguments(),
            }
        )
        + "\n"
    )
    (journal / "20260101T000002-999999998-gone00.jsonl").write_text(
        json.dumps(
            {**event, "request_id": "unknown-1", "fingerprint": "x", "endpoint": "fal-ai/no-such-model", "input": {}}
        )
        + "\n"
    )
    paid = submit_directly(second)
    journal_file(tmp_path, 999_999_999, paid, second)  # sorts after both
    holds_its_lock = (
        "import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB);"
        " print('locked', flush=True); sys.stdin.read()"
    )
    live = subprocess.Popen(
        [sys.executable, "-c", holds_its_lock, str(journal / "20260101T000001-12345-live00.jsonl")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert live.stdout is not None and live.stdout.readline() == b"locked\n"
        result = resume(store=tmp_path, progress=False)
    finally:
        live.communicate(b"")
    assert result.count("ok") == 1 and list(load_runs(tmp_path)["request_id"]) == [paid]
    assert set(Journal(journal).pending()) == {"live-1", "unknown-1"}, "both left in the journal"


def test_the_newest_ok_row_is_the_cache_source_whatever_order_the_rows_arrived_in(emulator, tmp_path):
    """A teammate's older row synced in after this store's own newer row: the newer one is reused."""
    from kling_lab.store.sync import sync

    laptop, team = tmp_path / "laptop", tmp_path / "team"
    run(ONE, store=laptop, progress=False)
    run(ONE, store=team, progress=False)
    newest = load_runs(team).iloc[0]["run_id"]
    sync(laptop, team, progress=False)
    hit = run(ONE, store=team, progress=False)
    assert hit.cache_hits == 1 and hit.rows[0]["source_run_id"] == newest


def test_a_refusal_after_an_ok_row_stays_final_behind_cache_hits(emulator, tmp_path):
    """ok, then refused (content policy changed), then a cache hit of the old ok row: once that video
    is gone, the refusal is the verdict (a cache hit repeats an older row, it is no new verdict)."""
    item = ONE.items[0]
    assert run(ONE, store=tmp_path, progress=False).count("ok") == 1
    emulator.configure(content_policy_keywords=["paper boat"])
    refused = run(ONE, store=tmp_path, progress=False, force=True)
    assert refused.rows[0]["error_type"] == "content_policy_violation"
    assert run(ONE, store=tmp_path, progress=False).cache_hits == 1
    store = RunStore(tmp_path)
    ok = load_runs(tmp_path).query("status == 'ok' and cache_hit != True").iloc[0]
    (store.root / ok["video_path"]).unlink()
    again = run(ONE, store=tmp_path, progress=False)
    assert again.count("skipped_final") == 1
    assert emulator.stats()["submissions_by_fingerprint"][item.fingerprint] == 2, "not submitted a third time"


def test_every_refused_item_is_skipped_whatever_skip_rows_precede_it(emulator, tmp_path):
    policy = Sweep.from_list([{"prompt": "a [blocked] kite"}, {"prompt": "a [blocked] lamp"}], name="refused")
    kite, lamp = policy.items
    run(Sweep.from_list([{"prompt": "a [blocked] kite"}], name="refused"), store=tmp_path, progress=False)
    run(Sweep.from_list([{"prompt": "a [blocked] kite"}], name="refused"), store=tmp_path, progress=False)
    run(Sweep.from_list([{"prompt": "a [blocked] lamp"}], name="refused"), store=tmp_path, progress=False)
    assert [r["status"] for r in load_runs(tmp_path).sort_values("logged_at").to_dict("records")] == [
        "failed",
        "skipped_final",
        "failed",
    ]
    both = run(policy, store=tmp_path, progress=False)
    assert both.count("skipped_final") == 2 and both.submitted == 0
    assert emulator.stats()["submissions_by_fingerprint"] == {kite.fingerprint: 1, lamp.fingerprint: 1}


def test_a_rerun_adopts_the_orphan_a_finished_run_could_not_find_and_collects_it(emulator, tmp_path):
    """The first run's submit went unanswered and fal's listing was closed to its key: it tried again
    (ok) and left the orphan reserved. The next run finds the orphan, re-attaches it, and logs it."""
    from test_money_safety import seed_losing_first_submit

    first, second = SWEEP.items
    emulator.configure(seed=seed_losing_first_submit(first, [second]), rate_lost_submit=0.5, platform_scope="none")
    lost = run(SWEEP, store=tmp_path, progress=False, orphan_wait_s=0.0)
    assert lost.held == 1 and lost.count("ok") == 2 and emulator.stats()["submissions"] == 3
    emulator.configure(rate_lost_submit=0.0, platform_scope="admin")
    again = run(SWEEP, store=tmp_path, progress=False, orphan_wait_s=0.0)
    [adopted] = [r for r in again.rows if r.get("adopted")]
    assert adopted["fingerprint"] == first.fingerprint and adopted["status"] == "ok" and again.held == 0
    assert again.submitted == 0 and emulator.stats()["submissions"] == 3, "collected, nothing paid again"
    assert Journal(tmp_path / "journal").ambiguous() == []


def test_resume_by_request_id_collects_a_request_the_journal_never_saw(emulator, tmp_path):
    """``kling-lab resume --request-id ID``: fal's listing tells what it was; it is journaled and collected."""
    from kling_lab.backends.base import Completed
    from kling_lab.errors import InvalidInput

    item = ONE.items[0]
    paid = submit_directly(item)

    async def ended() -> None:  # fal lists a request once it has ended
        backend = EmulatorBackend()
        try:
            while not isinstance(await backend.status(item.request.endpoint.id, paid), Completed):
                await asyncio.sleep(0.05)
        finally:
            await backend.aclose()

    asyncio.run(ended())
    with pytest.raises(InvalidInput, match="fal lists no such request"):
        resume(store=tmp_path, progress=False, request_ids=["no-such-request"])
    result = resume(store=tmp_path, progress=False, request_ids=[paid])
    assert result.count("ok") == 1 and list(load_runs(tmp_path)["request_id"]) == [paid]
    assert load_runs(tmp_path).iloc[0]["fingerprint"] == item.fingerprint
    assert emulator.stats()["submissions"] == 1
