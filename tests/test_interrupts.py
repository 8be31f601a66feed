"""Interrupts and timeouts at the edges of a request's life, made deterministic.

No test here relies on timing luck: the emulator holds a submit's answer until the test lets it go
(``hold_submit_responses``), or a run observer freezes the runner's loop at a chosen event until
the emulator has reached the state the test needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kling_lab.backends.emulator import EmulatorServer
from kling_lab.runner.api import make_runner, resume
from kling_lab.runner.events import JobEvent
from kling_lab.runner.journal import Journal
from kling_lab.runner.options import RunResult
from kling_lab.store.run_store import load_runs
from kling_lab.sweep import Sweep

ONE = Sweep.grid("one", prompt="a lighthouse in a storm", cfg_scale=0.5)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Block until ``condition()`` holds; the bound only turns a hang into a failure."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.01)


def jobs(emulator: EmulatorServer, state: str) -> int:
    return emulator.stats()["jobs"][state]


def pending(store: Path) -> dict[str, Any]:
    return Journal(store / "journal").pending()


class FreezeAt:
    """A run observer that, at the first event in ``state``, blocks the runner's loop until
    ``until()`` holds, then calls ``then()`` (on the loop: it may cancel the run's task)."""

    def __init__(self, state: str, until: Callable[[], bool], then: Callable[[], None] = lambda: None) -> None:
        self.state, self.until, self.then = state, until, then
        self.fired = False
        self.events: list[JobEvent] = []

    def on_event(self, event: JobEvent) -> None:
        self.events.append(event)
        if event.state == self.state and not self.fired:
            self.fired = True
            wait_for(self.until, f"the emulator to reach the state wanted at {self.state!r}")
            self.then()


def interrupt_while_submit_is_in_flight(
    emulator: EmulatorServer, store: Path, before_answer: Callable[[], None] = lambda: None
) -> RunResult:
    """Run ONE; once fal holds the job but its answer is on hold, interrupt the run, then let the answer go."""
    emulator.configure(hold_submit_responses=True)

    async def main() -> RunResult:
        runner = make_runner("emulator", store, progress=False)
        task = asyncio.ensure_future(runner.run(ONE))
        while emulator.stats()["submits_held"] < 1:  # fal has the job; the runner has no id yet
            await asyncio.sleep(0.01)
        before_answer()
        task.cancel()  # delivered at the runner's next step, before the answer can be read
        emulator.configure(hold_submit_responses=False)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert runner.last_result is not None
        return runner.last_result

    return asyncio.run(main())


def test_an_interrupt_during_the_submit_cancels_the_job_at_fal_and_logs_it(emulator, tmp_path):
    emulator.configure(queue_delay_s=30.0)  # it is still queued when the interrupt comes
    result = interrupt_while_submit_is_in_flight(emulator, tmp_path)
    stats = emulator.stats()
    assert stats["submissions"] == 1 and stats["cancels"] == 1 and stats["jobs"]["cancelled"] == 1
    assert stats["billed_usd"] == 0
    df = load_runs(tmp_path)
    assert len(df) == 1, "the paid-for job has its row"
    row = df.iloc[0]
    assert row["status"] == "cancelled" and row["cost_usd"] == 0 and row["error_type"] == "interrupted"
    assert row["error"] == "interrupted by the user; cancelled at fal", "the cancel was confirmed"
    assert row["request_id"] and stats["submissions_by_fingerprint"] == {ONE.items[0].fingerprint: 1}
    assert result.interrupted and result.submitted == 1
    assert pending(tmp_path) == {}, "journaled, then done"


def test_an_interrupted_submit_whose_job_finished_meanwhile_is_collected_by_resume(emulator, tmp_path):
    def finished_at_fal() -> None:
        wait_for(lambda: jobs(emulator, "ok") == 1, "the job to finish at fal")

    result = interrupt_while_submit_is_in_flight(emulator, tmp_path, before_answer=finished_at_fal)
    assert result.interrupted and result.pending == 1
    assert len(load_runs(tmp_path)) == 0, "billed, so not logged cancelled"
    (request_id,) = pending(tmp_path)
    collected = resume(store=tmp_path, progress=False)
    assert collected.count("ok") == 1 and collected.submitted == 0
    row = load_runs(tmp_path).iloc[0]
    assert row["request_id"] == request_id and row["status"] == "ok" and row["cost_usd"] == pytest.approx(1.40)
    assert emulator.stats()["submissions"] == 1 and pending(tmp_path) == {}


def run_frozen(emulator: EmulatorServer, store: Path, freeze: FreezeAt, *, cancel: bool, **options: Any) -> RunResult:
    """Run ONE with ``freeze`` among the observers; with ``cancel``, its ``then`` interrupts the run."""

    async def main() -> RunResult:
        runner = make_runner("emulator", store, progress=False, observers=[freeze], **options)
        task = asyncio.ensure_future(runner.run(ONE))
        if cancel:
            freeze.then = task.cancel
            with pytest.raises(asyncio.CancelledError):
                await task
            assert runner.last_result is not None
            return runner.last_result
        return await task

    return asyncio.run(main())


def test_an_interrupted_request_that_finished_anyway_is_left_for_resume(emulator, tmp_path):
    freeze = FreezeAt("queued", until=lambda: jobs(emulator, "ok") == 1)
    result = run_frozen(emulator, tmp_path, freeze, cancel=True)
    assert result.interrupted and result.pending == 1 and result.rows == []
    assert [e.state for e in freeze.events][-1] == "left_pending"
    stats = emulator.stats()
    assert stats["cancel_calls"] == 1 and stats["cancels"] == 0, "fal said: too late, it is finished (and billed)"
    assert len(pending(tmp_path)) == 1 and len(load_runs(tmp_path)) == 0, "no cancelled row for a paid clip"
    collected = resume(store=tmp_path, progress=False)
    assert collected.count("ok") == 1 and collected.submitted == 0
    assert load_runs(tmp_path)["cost_usd"].sum() == pytest.approx(1.40)


def test_an_interrupt_while_downloading_leaves_it_for_resume_without_a_cancel_call(emulator, tmp_path):
    freeze = FreezeAt("downloading", until=lambda: True)
    result = run_frozen(emulator, tmp_path, freeze, cancel=True)
    assert result.interrupted and result.pending == 1 and result.rows == []
    assert emulator.stats()["cancel_calls"] == 0, "fal reported it completed: nothing to cancel"
    assert resume(store=tmp_path, progress=False).count("ok") == 1
    assert emulator.stats()["submissions"] == 1


def test_a_timed_out_request_that_completed_meanwhile_is_collected(emulator, tmp_path):
    timeout_s = 0.05
    seen: list[float] = []

    def finished_and_timed_out() -> bool:
        seen.append(time.monotonic())
        return jobs(emulator, "ok") == 1 and seen[-1] - seen[0] > timeout_s

    freeze = FreezeAt("queued", until=finished_and_timed_out)
    result = run_frozen(emulator, tmp_path, freeze, cancel=False, request_timeout_s=timeout_s)
    assert result.count("ok") == 1, result.rows
    stats = emulator.stats()
    assert stats["cancel_calls"] == 1 and stats["cancels"] == 0 and stats["submissions"] == 1
    row = load_runs(tmp_path).iloc[0]
    assert row["status"] == "ok" and row["cost_usd"] == pytest.approx(1.40) and row["video_sha256"]


# -- cancel.py on its own: a scripted backend (the wire-level behaviour is covered above) -----------
class Scripted:
    """A backend whose cancel answer and status sequence are set by the test."""

    name, endpoint = "scripted", "e"

    def __init__(self, cancel: str | Exception = "requested", statuses: list[Any] | None = None) -> None:
        self._cancel, self.statuses, self.polls = cancel, list(statuses or []), 0

    async def cancel(self, endpoint: str, request_id: str) -> str:
        if isinstance(self._cancel, Exception):
            raise self._cancel
        return self._cancel

    async def status(self, endpoint: str, request_id: str) -> Any:
        self.polls += 1
        item = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(item, Exception):
            raise item
        return item


def test_cancel_notes_say_what_fal_answered():
    from kling_lab.backends.base import Completed, Queued
    from kling_lab.errors import BackendError
    from kling_lab.runner.cancel import cancel_on_interrupt, cancel_quietly, confirm_cancel

    def on_interrupt(backend: Scripted) -> str | None:
        return asyncio.run(cancel_on_interrupt(backend, "e", "r", poll_interval_s=0.01))

    cancelled = Completed(error=None, error_type="request_cancelled")  # fal may send the type alone
    confirmed = Scripted("requested", [Queued(0), cancelled])
    assert on_interrupt(confirmed) == "interrupted by the user; cancelled at fal" and confirmed.polls == 2
    assert on_interrupt(Scripted("requested", [Completed()])) is None, "it finished: billed, left for resume"
    assert on_interrupt(Scripted("completed")) is None
    assert on_interrupt(Scripted("unknown")) == "interrupted by the user; fal no longer knows this request"
    lost = Scripted("requested", [BackendError("gone", transient=True)])
    assert on_interrupt(lost).startswith("interrupted by the user; cancellation requested at fal")
    assert lost.polls == 1, "a status error ends the confirmation at once"
    failed = on_interrupt(Scripted(BackendError("boom", transient=True)))
    assert failed == "interrupted; the cancel call failed (boom): fal may still run and bill it"
    assert asyncio.run(cancel_quietly(Scripted(RuntimeError("boom")), "e", "r")) == "failed"
    assert asyncio.run(cancel_quietly(Scripted("completed"), "e", "r")) == "completed"
    assert (
        asyncio.run(confirm_cancel(Scripted("requested", [Queued(0)]), "e", "r", 0.01, timeout_s=0.05)) == "requested"
    )


def test_settled_and_uninterruptible_outlast_repeated_interrupts():
    from kling_lab.runner.cancel import settled, uninterruptible

    async def main() -> None:
        gate = asyncio.Event()
        steps: list[str] = []

        async def answer() -> str:
            await gate.wait()
            raise RuntimeError("fal's answer was an error")

        async def cleanup() -> None:
            await gate.wait()
            steps.append("cleaned up")

        inner = asyncio.ensure_future(answer())
        waiters = [asyncio.ensure_future(settled(inner)), asyncio.ensure_future(uninterruptible(cleanup()))]
        for _ in range(5):
            await asyncio.sleep(0)  # both are waiting now
        for _ in range(3):  # three interrupts, each delivered before the next
            for waiter in waiters:
                waiter.cancel()
            for _ in range(5):
                await asyncio.sleep(0)
            assert not any(w.done() for w in waiters) and not inner.cancelled()
        gate.set()
        await asyncio.wait(waiters)
        assert waiters[0].exception() is None, "settled never raises the task's own error"
        assert isinstance(inner.exception(), RuntimeError) and steps == ["cleaned up"]

    asyncio.run(main())


# -- the other ways a request's life ends ---------------------------------------------------------
def test_an_interrupted_submit_answered_with_an_error_ends_before_submission(emulator, tmp_path):
    emulator.configure(rate_503=1.0, fault_calls={"submit"})  # fal refuses it: no job, an error answer
    result = interrupt_while_submit_is_in_flight(emulator, tmp_path)
    assert result.interrupted and result.submitted == 0 and result.rows == []
    assert emulator.stats()["submissions"] == 0 and pending(tmp_path) == {}


def test_a_request_fal_no_longer_knows_fails_with_fals_error_type(emulator, tmp_path):
    freeze = FreezeAt("queued", until=lambda: True, then=lambda: emulator.reset())  # fal drops every job
    result = run_frozen(emulator, tmp_path, freeze, cancel=False)
    row = load_runs(tmp_path).iloc[0]
    assert result.count("failed") == 1 and row["error_type"] == "not_found" and row["cost_usd"] == 0


def test_losing_contact_with_fal_leaves_the_request_in_the_journal(emulator, tmp_path):
    freeze = FreezeAt("queued", until=lambda: True, then=lambda: emulator.configure(rate_503=1.0))
    result = run_frozen(emulator, tmp_path, freeze, cancel=False, max_poll_errors=0)
    assert result.pending == 1 and result.rows == [] and len(pending(tmp_path)) == 1
    assert [e.state for e in freeze.events][-1] == "left_pending"
    emulator.configure(rate_503=0.0)
    assert resume(store=tmp_path, progress=False).count("ok") == 1


def test_a_timeout_longer_than_the_request_lets_it_finish(emulator, tmp_path):
    result = run_frozen(emulator, tmp_path, FreezeAt("never", until=lambda: True), cancel=False, request_timeout_s=3600)
    assert result.count("ok") == 1 and emulator.stats()["cancel_calls"] == 0


def test_a_failing_media_hook_never_loses_the_paid_clip(emulator, tmp_path):
    def broken(path: str) -> dict[str, Any]:
        raise RuntimeError("probe crashed")

    result = run_frozen(emulator, tmp_path, FreezeAt("never", until=lambda: True), cancel=False, media_hook=broken)
    row = load_runs(tmp_path).iloc[0]
    assert result.count("ok") == 1 and row["cost_usd"] == pytest.approx(1.40) and row["video_sha256"]


def test_an_interrupt_ends_a_request_not_yet_submitted_as_cancelled_without_a_row(emulator, tmp_path):
    """The second request waits for the one slot while the first submit is in flight: interrupted, it
    ends ``cancelled`` (nothing was sent, nothing to cancel at fal) and leaves no row."""
    emulator.configure(hold_submit_responses=True, queue_delay_s=30.0)
    two = Sweep.grid("two", prompt="a lighthouse in a storm", cfg_scale=[0.2, 0.8])
    seen = FreezeAt("no such state", lambda: True)  # records the events

    async def main() -> RunResult:
        runner = make_runner("emulator", tmp_path, progress=False, concurrency=1, observers=[seen])
        task = asyncio.ensure_future(runner.run(two))
        while emulator.stats()["submits_held"] < 1:
            await asyncio.sleep(0.01)
        task.cancel()
        emulator.configure(hold_submit_responses=False)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert runner.last_result is not None
        return runner.last_result

    result = asyncio.run(main())
    first, second = two.items
    ends = {e.fingerprint: e for e in seen.events if e.terminal}
    assert ends[second.fingerprint].state == "cancelled" and ends[second.fingerprint].row is None
    assert ends[second.fingerprint].message == "interrupted before it was submitted"
    assert ends[first.fingerprint].state == "cancelled" and ends[first.fingerprint].row is not None
    assert list(load_runs(tmp_path)["fingerprint"]) == [first.fingerprint]
    assert emulator.stats()["submissions_by_fingerprint"] == {first.fingerprint: 1} and result.interrupted
