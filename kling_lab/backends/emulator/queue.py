"""The emulator's queue model: jobs, the FIFO dispatcher and the counters, without HTTP.

A job is an endpoint id, its validated input, its price and a *work* coroutine function that
produces its result; the model does not care which endpoint it came from. Jobs wait ``queued``
(FIFO) for at least ``queue_delay_s`` and until one of ``concurrency`` slots is free, then run
``in_progress`` for at least ``service_time_s`` (the work runs inside that time), then end
``ok``, ``failed`` (the work raised :class:`JobFailed`, or anything else: an internal error) or
``cancelled``. Everything lives on one event loop and nothing here is thread-safe.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal

from kling_lab.backends.emulator.config import EmulatorConfig
from kling_lab.util.clock import utcnow

JobState = Literal["queued", "in_progress", "ok", "failed", "cancelled"]
JOB_STATES: tuple[JobState, ...] = ("queued", "in_progress", "ok", "failed", "cancelled")
CANCELLED_MESSAGE = "Request was cancelled"

Work = Callable[["Job"], Awaitable[Any]]


class JobFailed(Exception):
    """Raised by a job's work: the job ends ``failed`` with this message and fal error type."""

    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.message, self.error_type = message, error_type


def job_key(input_hash: str, ordinal: int) -> str:
    """The stable key of the ``ordinal``-th job (0-based) created for an input: seeds its faults and variation."""
    return f"{input_hash}#{ordinal}"


@dataclass(eq=False)
class Job:
    """One submitted request and everything the emulator knows about it."""

    request_id: str
    endpoint: str
    key: str  # stable across runs: input hash + submission ordinal of that input (fault key)
    input: Any  # the endpoint's validated input model
    work: Work
    cost_usd: float  # what fal would bill if it completes ok
    submitted: float = field(default_factory=time.monotonic)
    sent_at: datetime = field(default_factory=utcnow)  # wall clock, for the platform API's listing
    fallbacks_disabled: bool = False  # the submit carried ``x-fal-disable-fallbacks``
    raw_input: Any = None  # the JSON body as the client sent it (what fal's request listing shows)
    fingerprint: str | None = None  # kling_lab's X-Kling-Lab-Fingerprint header, when sent
    state: JobState = "queued"
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    error_type: str | None = None
    result: Any = None  # what the work returned
    files: dict[str, Path] = field(default_factory=dict)  # served by name; deleted with the job
    logs: list[dict[str, str]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def log(self, message: str) -> None:
        self.logs.append({"message": message, "level": "INFO", "source": "USER", "timestamp": utcnow().isoformat()})

    def finish(self, state: JobState, *, error: str | None = None, error_type: str | None = None) -> None:
        self.state, self.error, self.error_type = state, error, error_type
        self.finished = time.monotonic()
        self.log(error or "Request completed")

    @property
    def done(self) -> bool:
        return self.state in ("ok", "failed", "cancelled")

    def inference_time(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.monotonic()) - self.started

    def expired(self, ttl_s: float) -> bool:
        return self.finished is not None and time.monotonic() - self.finished > ttl_s

    def wall(self, moment: float | None) -> datetime | None:
        """A monotonic moment of this job (``started``, ``finished``) on the wall clock."""
        return None if moment is None else self.sent_at + timedelta(seconds=moment - self.submitted)


@dataclass
class Counters:
    """Everything ``stats()`` counts; a fresh instance is a reset."""

    submissions: int = 0
    submissions_by_input: collections.Counter[str] = field(default_factory=collections.Counter)
    submissions_by_fingerprint: collections.Counter[str] = field(default_factory=collections.Counter)
    submissions_with_fallbacks: int = 0  # submits without ``x-fal-disable-fallbacks``
    cancels: int = 0
    calls: collections.Counter[str] = field(default_factory=collections.Counter)  # HTTP calls by kind
    downloads: collections.Counter[str] = field(default_factory=collections.Counter)
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    ordinals: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    uploads: int = 0  # files uploaded to the emulated fal storage
    upload_bytes: int = 0
    uploads_by_sha256: collections.Counter[str] = field(default_factory=collections.Counter)
    authorized_requests: int = 0  # requests that carried an Authorization header
    authorization_sha256: set[str] = field(default_factory=set)  # digests of its distinct values, never the values
    submits_held: int = 0  # submit answers waiting now (``hold_submit_responses``)

    def next_ordinal(self, call: str, key: str) -> int:
        """0 for the first ``call`` on ``key``, then 1, 2, ..."""
        ordinal = self.ordinals[(call, key)]
        self.ordinals[(call, key)] += 1
        return ordinal

    def record_authorization(self, value: str) -> None:
        """Count a request's ``Authorization`` header, keeping only the SHA-256 of its value."""
        self.authorized_requests += 1
        self.authorization_sha256.add(hashlib.sha256(value.encode("utf-8")).hexdigest())


class JobQueue:
    """The jobs, their FIFO queue, the dispatcher that starts them, and the counters."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.counters = Counters()
        self._jobs: dict[str, Job] = {}
        self._queue: collections.deque[Job] = collections.deque()
        self._running: set[Job] = set()
        self._wake: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._dying: set[asyncio.Task[Any]] = set()
        self._answers: asyncio.Event | None = None  # set while submit answers may go out

    # -- lifecycle (on the loop) -----------------------------------------------------------------
    async def start(self) -> None:
        """Start the dispatcher on the running loop."""
        if self._dispatcher is None:
            self._wake = asyncio.Event()
            self._answers = asyncio.Event()
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch_loop())
            self._gate_answers()

    async def close(self) -> None:
        """Drop every job and stop the dispatcher, waiting for their tasks to end."""
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        if self._answers is not None:
            self._answers.set()  # held submit answers go out before the server stops
        self._drop_jobs()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            tasks.append(self._dispatcher)
        await asyncio.gather(*tasks, *self._dying, return_exceptions=True)
        self._dispatcher = self._wake = self._answers = None

    async def __aenter__(self) -> JobQueue:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- control ------------------------------------------------------------------------------
    def configure(self, config: EmulatorConfig) -> EmulatorConfig:
        """Use ``config`` from now on (jobs and counters are kept)."""
        self.config = config
        self._kick()
        self._gate_answers()
        return config

    def reset(self, config: EmulatorConfig | None = None) -> None:
        """Drop every job and zero the counters; optionally replace the config."""
        self._drop_jobs()
        self.counters = Counters()
        if config is not None:
            self.configure(config)

    # -- jobs ---------------------------------------------------------------------------------
    def submit(
        self,
        endpoint: str,
        value: Any,
        work: Work,
        *,
        input_hash: str,
        cost_usd: float = 0.0,
        fingerprint: str | None = None,
        notes: Iterable[str] = (),
        fallbacks_disabled: bool = False,
        raw_input: Any = None,
    ) -> Job:
        """Queue a job; ``notes`` are its first log lines, before "Request queued"."""
        c = self.counters
        key = job_key(input_hash, c.submissions_by_input[input_hash])
        job = Job(
            str(uuid.uuid4()),
            endpoint,
            key,
            value,
            work,
            cost_usd,
            fallbacks_disabled=fallbacks_disabled,
            raw_input=raw_input,
            fingerprint=fingerprint,
        )
        if not fallbacks_disabled:
            c.submissions_with_fallbacks += 1
        for note in notes:
            job.log(note)
        job.log("Request queued")
        c.submissions += 1
        c.submissions_by_input[input_hash] += 1
        if fingerprint:
            c.submissions_by_fingerprint[fingerprint] += 1
        self._jobs[job.request_id] = job
        self._queue.append(job)
        self._kick()
        return job

    async def answer_submit(self) -> None:
        """Wait (counted in ``submits_held``) while ``hold_submit_responses`` holds submit answers back."""
        if self._answers is None or self._answers.is_set():
            return
        self.counters.submits_held += 1
        counters = self.counters
        try:
            await self._answers.wait()
        finally:
            counters.submits_held -= 1

    def get(self, request_id: str) -> Job | None:
        return self._jobs.get(request_id)

    def jobs(self) -> list[Job]:
        """Every job still known, in submission order."""
        return list(self._jobs.values())

    def position(self, job: Job) -> int | None:
        """0 for the job at the head of the queue; None once it has left the queue."""
        return self._queue.index(job) if job.state == "queued" else None

    def cancel(self, job: Job) -> None:
        """Cancel a job that is not done: a queued one never runs, a running one stops."""
        if job.done:
            raise ValueError(f"job {job.request_id} is already {job.state}")
        if job.state == "queued":
            self._queue.remove(job)
        elif job.task is not None:
            job.task.cancel()  # its slot frees when the task ends (see _start_ready_jobs)
        job.finish("cancelled", error=CANCELLED_MESSAGE, error_type="request_cancelled")
        self.counters.cancels += 1

    def stats(self) -> dict[str, Any]:
        """A deep copy of the counters, the number of jobs per state and what fal would bill."""
        c = self.counters
        states = collections.Counter(job.state for job in self._jobs.values())
        billed = sum(job.cost_usd for job in self._jobs.values() if job.state == "ok")
        return copy.deepcopy(
            {
                "submissions": c.submissions,
                "submit_calls": c.calls["submit"],
                "submissions_by_input": dict(c.submissions_by_input),
                "submissions_by_fingerprint": dict(c.submissions_by_fingerprint),
                "submissions_with_fallbacks": c.submissions_with_fallbacks,
                "cancels": c.cancels,
                "cancel_calls": c.calls["cancel"],
                "status_calls": c.calls["status"],
                "result_calls": c.calls["result"],
                "downloads": dict(c.downloads),
                "faults": dict(c.faults),
                "jobs": {state: states.get(state, 0) for state in JOB_STATES},
                "billed_usd": round(billed, 2),
                "billed_by_request": {job.request_id: job.cost_usd for job in self._jobs.values() if job.state == "ok"},
                "jobs_by_request": {
                    job.request_id: {"state": job.state, "fingerprint": job.fingerprint, "cost_usd": job.cost_usd}
                    for job in self._jobs.values()
                },
                "authorization": {"requests": c.authorized_requests, "sha256": sorted(c.authorization_sha256)},
                "uploads": c.uploads,
                "upload_bytes": c.upload_bytes,
                "uploads_by_sha256": dict(c.uploads_by_sha256),
                "pricing_calls": c.calls["pricing"],
                "submits_held": c.submits_held,
            }
        )

    # -- the dispatcher -------------------------------------------------------------------------
    def _gate_answers(self) -> None:
        if self._answers is not None:
            if self.config.hold_submit_responses:
                self._answers.clear()
            else:
                self._answers.set()

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _dispatch_loop(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            timeout = self._start_ready_jobs()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    def _start_ready_jobs(self) -> float | None:
        """Start queued jobs in FIFO order; return seconds until the head job may start."""
        now = time.monotonic()
        while self._queue and len(self._running) < self.config.concurrency:
            head = self._queue[0]
            wait = head.submitted + self.config.queue_delay_s - now
            if wait > 0:
                return wait
            self._queue.popleft()
            self._running.add(head)
            # In progress from now, not from when the task first runs: a status call in between
            # must not look for the job in the queue it has just left.
            head.state, head.started = "in_progress", time.monotonic()
            head.task = asyncio.get_running_loop().create_task(self._run(head))
            head.task.add_done_callback(partial(self._free_slot, head))  # also when cancelled before it ran
        return None

    def _free_slot(self, job: Job, task: asyncio.Task[None]) -> None:
        self._running.discard(job)
        self._kick()

    async def _run(self, job: Job) -> None:
        assert job.started is not None
        done_at = job.started + self.config.service_time_s
        try:
            job.result = await job.work(job)
            if (rest := done_at - time.monotonic()) > 0:
                await asyncio.sleep(rest)
            job.finish("ok")
        except asyncio.CancelledError:
            raise
        except JobFailed as exc:
            job.finish("failed", error=exc.message, error_type=exc.error_type)
        except Exception as exc:  # noqa: BLE001 - a crashed work is the model's 500, as at fal
            job.finish("failed", error=f"{type(exc).__name__}: {exc}", error_type="internal_server_error")

    def _drop_jobs(self) -> None:
        for job in self._jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
                self._dying.add(job.task)  # keep a reference until the cancellation has run
                job.task.add_done_callback(self._dying.discard)
            for path in job.files.values():
                path.unlink(missing_ok=True)
        self._jobs.clear()
        self._queue.clear()
        self._running.clear()
