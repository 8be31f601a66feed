"""Run events over real emulator runs: planned, transitions, exactly one terminal state per job."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import pytest

from kling_lab.runner.api import make_runner, run
from kling_lab.runner.events import TERMINAL_STATES, JobEvent
from kling_lab.runner.job import Job
from kling_lab.store.run_store import load_runs
from kling_lab.sweep import Sweep


class Recorder:
    """A run observer that keeps every event, per job (fingerprint, repeat)."""

    def __init__(self) -> None:
        self.events: list[JobEvent] = []

    def on_event(self, event: JobEvent) -> None:
        assert asyncio.get_running_loop() is not None  # called on the runner's event-loop thread
        self.events.append(event)

    def by_job(self) -> dict[tuple[str, int], list[JobEvent]]:
        jobs: dict[tuple[str, int], list[JobEvent]] = defaultdict(list)
        for e in self.events:
            jobs[(e.fingerprint, e.repeat)].append(e)
        return dict(jobs)

    def terminal(self) -> list[JobEvent]:
        return [e for e in self.events if e.terminal]


def sweep_of(n: int, name: str) -> Sweep:
    return Sweep.grid(name, prompt="a kite over a beach", cfg_scale=[round(0.1 * (i + 1), 2) for i in range(n)])


def assert_planned_then_one_terminal(rec: Recorder, sweep: Sweep) -> None:
    jobs = rec.by_job()
    assert set(jobs) == {(i.fingerprint, i.repeat) for i in sweep}
    for key, events in jobs.items():
        states = [e.state for e in events]
        assert states[0] == "planned", (key, states)
        assert sum(s in TERMINAL_STATES for s in states) == 1, (key, states)
        assert states[-1] in TERMINAL_STATES, (key, states)
    assert [e.state for e in rec.events[: len(jobs)]] == ["planned"] * len(jobs), "every job is planned first"
    assert [e.sweep_index for e in rec.events[: len(jobs)]] == [i.index for i in sweep]


def test_every_job_is_planned_then_ends_once_and_rows_match(emulator, tmp_path):
    sweep = sweep_of(4, "observed")
    rec = Recorder()
    result = run(sweep, store=tmp_path, progress=False, observers=[rec])
    assert_planned_then_one_terminal(rec, sweep)
    ends = rec.terminal()
    assert {e.state for e in ends} == {"ok"}
    logged = load_runs(tmp_path).set_index("run_id")
    for e in ends:
        assert e.row is not None and e.row["status"] == "ok" and e.request_id == e.row["request_id"]
        assert logged.loc[e.row["run_id"], "request_id"] == e.request_id
        with pytest.raises(TypeError):
            e.row["status"] = "failed"  # observers get a read-only row
    queued = [e for e in rec.events if e.state == "queued"]
    assert {e.request_id for e in queued} == {e.request_id for e in ends}, "queued once submitted, with its id"
    assert any(e.state == "downloading" for e in rec.events)
    spent = [e.spent_usd for e in rec.events]
    assert spent == sorted(spent) and spent[-1] == result.spent_usd == pytest.approx(5.60)


def test_the_cache_hit_path_emits_cache_hit(emulator, tmp_path):
    sweep = sweep_of(3, "cached")
    run(sweep, store=tmp_path, progress=False)
    rec = Recorder()
    result = run(sweep, store=tmp_path, progress=False, observers=[rec])
    assert result.cache_hits == 3 and emulator.stats()["submissions"] == 3
    assert_planned_then_one_terminal(rec, sweep)
    ends = rec.terminal()
    assert [e.state for e in ends] == ["cache_hit"] * 3
    assert all(e.row is not None and e.row["cache_hit"] and e.row["cost_usd"] == 0 for e in ends)
    assert {e.state for e in rec.events} == {"planned", "cache_hit"} and ends[-1].spent_usd == 0


def test_queue_positions_running_and_failures(emulator, tmp_path):
    emulator.configure(concurrency=1, service_time_s=0.3)
    sweep = Sweep.from_list(
        [{"prompt": "a calm lake", "cfg_scale": c} for c in (0.2, 0.4, 0.6)] + [{"prompt": "a [blocked] scene"}],
        name="mixed",
    )
    rec = Recorder()
    run(sweep, store=tmp_path, progress=False, observers=[rec], concurrency=4)
    assert_planned_then_one_terminal(rec, sweep)
    positions = [e.queue_position for e in rec.events if e.state == "queued" and e.queue_position is not None]
    assert positions and max(positions) >= 1, "fal's queue position reaches the observer"
    assert any(e.state == "running" for e in rec.events)
    ends = {e.sweep_index: e for e in rec.terminal()}
    blocked = ends[3]
    assert blocked.state == "failed" and blocked.row is not None
    assert blocked.row["error_type"] == "content_policy_violation" and blocked.message == blocked.row["error"]
    assert sorted(e.state for e in ends.values()) == ["failed", "ok", "ok", "ok"]


def test_a_budget_cap_ends_jobs_skipped_budget(emulator, tmp_path):
    sweep = sweep_of(4, "capped")
    rec = Recorder()
    run(sweep, store=tmp_path, progress=False, observers=[rec], max_cost_usd=2.80, concurrency=4)
    assert_planned_then_one_terminal(rec, sweep)
    states = sorted(e.state for e in rec.terminal())
    assert states == ["ok", "ok", "skipped_budget", "skipped_budget"]
    skipped = [e for e in rec.terminal() if e.state == "skipped_budget"]
    assert all(e.row is not None and e.row["error_type"] == "budget" and e.request_id is None for e in skipped)


def test_a_failing_observer_is_logged_and_costs_nothing(emulator, tmp_path, caplog):
    class Broken:
        def on_event(self, event: JobEvent) -> None:
            raise RuntimeError("observer bug")

    rec = Recorder()
    sweep = sweep_of(2, "broken")
    with caplog.at_level(logging.WARNING, logger="kling_lab.runner"):
        result = run(sweep, store=tmp_path, progress=False, observers=[Broken(), rec])
    assert result.count("ok") == 2 and emulator.stats()["submissions"] == 2
    assert_planned_then_one_terminal(rec, sweep)  # later observers still hear everything
    warnings = [r for r in caplog.records if "run observer" in r.getMessage()]
    assert warnings and warnings[0].exc_info is not None and "observer bug" in caplog.text


def test_an_object_without_on_event_is_refused():
    with pytest.raises(ValueError, match="on_event"):
        make_runner("emulator", observers=[print])


def test_an_interrupted_run_still_ends_every_job_once(emulator, tmp_path):
    emulator.configure(service_time_s=3600.0, concurrency=2)  # nothing finishes before the interrupt
    sweep = sweep_of(6, "interrupted")
    rec = Recorder()

    async def interrupted() -> None:
        runner = make_runner("emulator", tmp_path, progress=False, concurrency=3, observers=[rec])
        task = asyncio.ensure_future(runner.run(sweep))
        while emulator.stats()["submissions"] < 3:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    assert_planned_then_one_terminal(rec, sweep)
    ends = rec.terminal()
    rows = load_runs(tmp_path)
    with_rows = [e for e in ends if e.row is not None]
    assert sorted(e.row["run_id"] for e in with_rows if e.row) == sorted(rows["run_id"])
    never_sent = [e for e in ends if e.request_id is None]
    assert never_sent and all(e.state == "cancelled" and e.row is None for e in never_sent)


def test_progress_bar_is_an_observer_with_todays_text(emulator, tmp_path, capsys):
    run(sweep_of(2, "bar"), store=tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "$2.80 at fal prices, 2 ok, 0 failed" in err and "2/2" in err


def test_a_job_tells_each_change_once_and_nothing_after_its_end(emulator, tmp_path):
    rec = Recorder()
    runner = make_runner("emulator", tmp_path, progress=False, observers=[rec])
    item = sweep_of(1, "unit").items[0]
    job = Job(runner.ctx, item.request, item.fingerprint, item.repeat, {"sweep_index": 0})

    async def transitions() -> None:  # on an event loop, as in a run
        for state, position in [("planned", None), ("queued", 2), ("queued", 2), ("queued", 1), ("running", None)]:
            job.emit(state, queue_position=position)  # type: ignore[arg-type]
        job.emit("running")
        job.end_without_row(asyncio.CancelledError())
        job.emit("ok")
        job.end_without_row(None)

    asyncio.run(transitions())
    assert [(e.state, e.queue_position) for e in rec.events] == [
        ("planned", None),
        ("queued", 2),
        ("queued", 1),
        ("running", None),
        ("cancelled", None),
    ]
    assert rec.events[-1].message == "interrupted before it was submitted" and job.ended
