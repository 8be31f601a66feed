"""The emulator's queue model on its own: no HTTP, no renderer, work we control by hand."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kling_lab.backends.emulator import EmulatorConfig
from kling_lab.backends.emulator.queue import Job, JobFailed, JobQueue, job_key

INSTANT = dict(queue_delay_s=0.0, service_time_s=0.0)


class Gates:
    """Work whose jobs run until released one by one; records what started and what was cancelled."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.started: list[str] = []
        self.cancelled: list[str] = []

    async def work(self, job: Job) -> str:
        self.started.append(job.input)
        gate = self.gates.setdefault(job.request_id, asyncio.Event())
        try:
            await gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(job.input)
            raise
        return f"result of {job.input}"

    def release(self, job: Job) -> None:
        self.gates.setdefault(job.request_id, asyncio.Event()).set()


def submit(queue: JobQueue, name: str, work: Callable[[Job], Awaitable[Any]], **options: Any) -> Job:
    return queue.submit("test/endpoint", name, work, input_hash=options.pop("input_hash", name), **options)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the loop run until ``condition()`` holds (a generous bound only against hangs)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        await asyncio.sleep(0.001)


def run(scenario: Callable[[JobQueue], Awaitable[None]], **config: Any) -> None:
    async def main() -> None:
        async with JobQueue(EmulatorConfig(**config)) as queue:
            await scenario(queue)

    asyncio.run(main())


def test_jobs_wait_in_fifo_order_with_positions() -> None:
    async def scenario(queue: JobQueue) -> None:
        gates = Gates()
        jobs = [submit(queue, f"job{i}", gates.work) for i in range(3)]
        await asyncio.sleep(0.01)  # the dispatcher has run: the queue delay keeps all three waiting
        assert [job.state for job in jobs] == ["queued"] * 3 and gates.started == []
        assert [queue.position(job) for job in jobs] == [0, 1, 2]
        queue.cancel(jobs[1])
        assert [queue.position(job) for job in jobs] == [0, None, 1]
        queue.configure(EmulatorConfig(concurrency=1, **INSTANT))  # honoured at once, not at the next poll
        await until(lambda: jobs[0].state == "in_progress", "the head to start")
        assert queue.position(jobs[2]) == 0 and gates.started == ["job0"]
        gates.release(jobs[0])
        await until(lambda: gates.started == ["job0", "job2"], "the next one in line")

    run(scenario, queue_delay_s=3600.0, service_time_s=0.0, concurrency=4)


def test_no_more_jobs_run_than_the_concurrency() -> None:
    async def scenario(queue: JobQueue) -> None:
        gates = Gates()
        jobs = [submit(queue, f"job{i}", gates.work) for i in range(5)]
        await until(lambda: len(gates.started) == 2, "two jobs to start")
        await asyncio.sleep(0.01)
        assert [job.state for job in jobs] == ["in_progress"] * 2 + ["queued"] * 3
        assert queue.stats()["jobs"] == {"queued": 3, "in_progress": 2, "ok": 0, "failed": 0, "cancelled": 0}
        gates.release(jobs[1])
        await until(lambda: jobs[2].state == "in_progress", "a freed slot to be filled")
        assert jobs[1].state == "ok" and jobs[1].result == "result of job1"
        assert jobs[0].state == "in_progress" and jobs[3].state == "queued"
        assert sum(job.state == "in_progress" for job in jobs) == 2

    run(scenario, concurrency=2, **INSTANT)


def test_cancelling_a_queued_job_means_its_work_never_runs() -> None:
    async def scenario(queue: JobQueue) -> None:
        gates = Gates()
        first, second = submit(queue, "first", gates.work), submit(queue, "second", gates.work)
        await until(lambda: first.state == "in_progress", "the first to start")
        queue.cancel(second)
        gates.release(first)
        await until(lambda: first.done, "the first to finish")
        await asyncio.sleep(0.01)
        assert gates.started == ["first"] and second.state == "cancelled"
        assert (second.error, second.error_type) == ("Request was cancelled", "request_cancelled")
        assert second.inference_time() is None

    run(scenario, concurrency=1, **INSTANT)


def test_cancelling_a_running_job_stops_its_work_and_frees_the_slot() -> None:
    async def scenario(queue: JobQueue) -> None:
        gates = Gates()
        running, waiting = submit(queue, "running", gates.work), submit(queue, "waiting", gates.work)
        await until(lambda: gates.started == ["running"], "the first to start")
        queue.cancel(running)
        await until(lambda: gates.cancelled == ["running"], "the work to see the cancellation")
        await until(lambda: waiting.state == "in_progress", "the freed slot to be used")
        assert running.state == "cancelled" and running.result is None and running.inference_time() is not None
        with pytest.raises(ValueError, match="already cancelled"):
            queue.cancel(running)
        stats = queue.stats()
        assert stats["cancels"] == 1 and stats["jobs"]["cancelled"] == 1 and stats["billed_usd"] == 0

    run(scenario, concurrency=1, **INSTANT)


def test_the_service_time_is_a_floor_for_successful_work() -> None:
    async def scenario(queue: JobQueue) -> None:
        finished: list[str] = []

        async def quick(job: Job) -> str:
            finished.append(job.input)
            return "made"

        job = submit(queue, "quick", quick)
        await until(lambda: finished == ["quick"], "the work to return")
        await asyncio.sleep(0.01)
        assert job.state == "in_progress" and job.result == "made"  # done, but not before the service time

    run(scenario, queue_delay_s=0.0, service_time_s=3600.0)


def test_work_failures_end_the_job_failed_and_are_not_billed() -> None:
    async def refuse(job: Job) -> None:
        raise JobFailed("no thanks", "content_policy_violation")

    async def crash(job: Job) -> None:
        raise RuntimeError("boom")

    async def succeed(job: Job) -> str:
        return "fine"

    async def scenario(queue: JobQueue) -> None:
        jobs = [submit(queue, name, work, cost_usd=1.4) for name, work in (("a", refuse), ("b", crash), ("c", succeed))]
        await until(lambda: all(job.done for job in jobs), "all jobs to end")
        assert [(job.state, job.error_type) for job in jobs] == [
            ("failed", "content_policy_violation"),
            ("failed", "internal_server_error"),
            ("ok", None),
        ]
        assert jobs[0].error == "no thanks" and jobs[1].error == "RuntimeError: boom"
        assert jobs[0].logs[-1]["message"] == "no thanks" and jobs[2].logs[-1]["message"] == "Request completed"
        assert queue.stats()["billed_usd"] == pytest.approx(1.4)

    run(scenario, **INSTANT)


def test_counters_count_submissions_by_input_and_fingerprint(tmp_path: Path) -> None:
    async def scenario(queue: JobQueue) -> None:
        gates = Gates()
        a1 = submit(queue, "a", gates.work, input_hash="hash-a", fingerprint="fp-1", notes=["hello"])
        a2 = submit(queue, "a", gates.work, input_hash="hash-a", fingerprint="fp-1")
        submit(queue, "b", gates.work, input_hash="hash-b")
        assert (a1.key, a2.key) == (job_key("hash-a", 0), job_key("hash-a", 1))  # fault keys stay stable
        assert [line["message"] for line in a1.logs] == ["hello", "Request queued"]
        assert [queue.counters.next_ordinal("status", "k") for _ in range(3)] == [0, 1, 2]
        queue.counters.record_authorization("Key one")
        queue.counters.record_authorization("Key one")
        stats = queue.stats()
        assert stats["submissions"] == 3 and stats["submissions_by_input"] == {"hash-a": 2, "hash-b": 1}
        assert stats["submissions_by_fingerprint"] == {"fp-1": 2}
        assert stats["authorization"] == {"requests": 2, "sha256": [hashlib.sha256(b"Key one").hexdigest()]}
        stats["submissions_by_input"]["hash-a"] = 99  # a copy, not the live counters
        assert queue.stats()["submissions_by_input"]["hash-a"] == 2

        output = tmp_path / "output.bin"
        output.write_bytes(b"x")
        a1.files[output.name] = output
        await until(lambda: a1.state == "in_progress", "a job to start")
        queue.reset(EmulatorConfig(concurrency=7))
        assert queue.get(a1.request_id) is None and not output.exists() and queue.config.concurrency == 7
        await until(lambda: gates.cancelled == ["a"], "the running job's work to be cancelled")
        stats = queue.stats()
        assert stats["submissions"] == 0 and stats["authorization"] == {"requests": 0, "sha256": []}
        assert sum(stats["jobs"].values()) == 0
        again = submit(queue, "a", gates.work, input_hash="hash-a")
        assert again.key == job_key("hash-a", 0)  # a reset starts the ordinals again

    run(scenario, concurrency=1, **INSTANT)
