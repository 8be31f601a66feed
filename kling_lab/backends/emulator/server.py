"""The emulator: an HTTPS server on loopback that speaks fal's queue protocol for Kling.

The real, unmodified ``fal_client`` talks to it (point ``FAL_QUEUE_RUN_HOST`` at it
before fal_client is imported, and trust its CA through ``SSL_CERT_FILE``). Jobs
wait ``IN_QUEUE`` (FIFO, at least ``queue_delay_s``, until one of ``concurrency``
slots is free), run ``IN_PROGRESS`` for at least ``service_time_s`` while a
placeholder mp4 renders in a thread pool, then read ``COMPLETED``. Faults come from
:class:`EmulatorConfig`, deterministically. All state lives on the server's own
event loop; :meth:`EmulatorServer.stats`, :meth:`configure` and :meth:`reset` hop
onto it, so they are safe from any thread.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import copy
import hashlib
import os
import shlex
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from pydantic import ValidationError

from kling_lab.backends.emulator.config import EmulatorConfig
from kling_lab.backends.emulator.render import output_size, render_placeholder
from kling_lab.backends.emulator.tls import emulator_tls
from kling_lab.request import ENDPOINT, KlingRequest, canonical_json

EMULATOR_ENV = "KLING_LAB_EMULATOR"
APP_PREFIX = "fal-ai/kling-video"  # what fal_client builds when re-attaching by id
REQUEST_PREFIXES = (APP_PREFIX, ENDPOINT)
JOB_STATES = ("queued", "in_progress", "ok", "failed", "cancelled")
CANCELLED_MESSAGE = "Request was cancelled"
CONTENT_POLICY_MESSAGE = "The prompt was flagged by the content checker (kling_lab emulator)."
INFRA_ERRORS: dict[str, tuple[int, str, str]] = {
    "429": (429, "rate_limited", "Too many requests (emulated rate limit)"),
    "500": (500, "internal_server_error", "Internal server error (emulated)"),
    "503": (503, "runner_scheduling_failure", "No runner available (emulated)"),
}

T = TypeVar("T")


def input_sha256(request: KlingRequest) -> str:
    """The key of ``stats()["submissions_by_input"]``: sha256 of the canonical JSON input."""
    return hashlib.sha256(canonical_json(request.arguments()).encode("utf-8")).hexdigest()


def job_key(input_hash: str, ordinal: int) -> str:
    """The stable key of the ``ordinal``-th job (0-based) created for an input: seeds its faults and variation."""
    return f"{input_hash}#{ordinal}"


def _utc_now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class _Job:
    """One submitted request and everything the server knows about it."""

    request_id: str
    key: str  # stable across runs: input hash + submission ordinal of that input (fault key)
    request: KlingRequest
    blocked: bool  # will fail the content policy
    submitted: float = field(default_factory=time.monotonic)
    state: str = "queued"
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    error_type: str | None = None
    video: Path | None = None
    logs: list[dict[str, str]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def log(self, message: str) -> None:
        self.logs.append({"message": message, "level": "INFO", "source": "USER", "timestamp": _utc_now()})

    def finish(self, state: str, *, error: str | None = None, error_type: str | None = None) -> None:
        self.state, self.error, self.error_type = state, error, error_type
        self.finished = time.monotonic()
        self.log(error or "Request completed")

    @property
    def done(self) -> bool:
        return self.state in ("ok", "failed", "cancelled")

    @property
    def file_name(self) -> str:
        return f"emulator-{self.request_id}.mp4"

    def inference_time(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.monotonic()) - self.started


@dataclass
class _Counters:
    """Everything ``stats()`` counts; a fresh instance is a reset."""

    submissions: int = 0
    submit_calls: int = 0
    submissions_by_input: collections.Counter[str] = field(default_factory=collections.Counter)
    submissions_by_fingerprint: collections.Counter[str] = field(default_factory=collections.Counter)
    cancels: int = 0
    cancel_calls: int = 0
    status_calls: int = 0
    result_calls: int = 0
    downloads: collections.Counter[str] = field(default_factory=collections.Counter)
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    ordinals: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)

    def next_ordinal(self, call: str, key: str) -> int:
        """0 for the first ``call`` on ``key``, then 1, 2, ..."""
        ordinal = self.ordinals[(call, key)]
        self.ordinals[(call, key)] += 1
        return ordinal


class EmulatorServer:
    """fal's queue API for Kling on ``https://host:port``, run in a background thread or the foreground."""

    def __init__(self, config: EmulatorConfig | None = None, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self._config = config or EmulatorConfig()
        self._host, self._requested_port = host, port
        self._port: int | None = None
        self._tls = emulator_tls()
        self._jobs: dict[str, _Job] = {}
        self._queue: collections.deque[str] = collections.deque()
        self._running: set[str] = set()
        self._counters = _Counters()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._wake: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool_workers = 0
        self._files: Path | None = None
        self._dying: set[asyncio.Task[Any]] = set()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> EmulatorServer:
        """Serve in a daemon thread with its own event loop; returns once listening."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._main, args=(ready, errors), name="kling-lab-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            self._thread.join()
            self._thread = None
            raise errors[0]
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C), printing how to point clients here."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def announce() -> None:
            print(f"kling_lab emulator (placeholder videos, not Kling output) on {self.host_port}", flush=True)
            exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in self.env().items())
            print(f"export {exports}", flush=True)

        try:
            self._main(ready, errors, on_ready=announce)
        except KeyboardInterrupt:
            pass
        if errors:
            raise errors[0]

    def stop(self) -> None:
        """Stop serving, cancel all jobs and delete the video files."""
        loop, thread = self._loop, self._thread
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(
        self, ready: threading.Event, errors: list[BaseException], on_ready: Callable[[], None] | None = None
    ) -> None:
        loop = asyncio.new_event_loop()
        self._loop, self._loop_thread = loop, threading.get_ident()
        try:
            try:
                loop.run_until_complete(self._startup())
            except BaseException as exc:  # noqa: BLE001 - report to start(), which re-raises
                errors.append(exc)
                return
            finally:
                ready.set()
            if on_ready is not None:
                on_ready()
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.close()
            self._loop = self._loop_thread = None

    async def _startup(self) -> None:
        self._files = Path(tempfile.mkdtemp(prefix="kling-lab-emulator-"))
        self._wake = asyncio.Event()
        self._resize_pool()
        self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._requested_port, ssl_context=self._tls.server_context)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch_loop())

    async def _shutdown(self) -> None:
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        self._drop_jobs()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            tasks.append(self._dispatcher)
        await asyncio.gather(*tasks, return_exceptions=True)  # let cancelled tasks finish cleanly
        if self._runner is not None:
            await self._runner.cleanup()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._files is not None:
            shutil.rmtree(self._files, ignore_errors=True)
        self._runner = self._dispatcher = self._pool = self._files = None
        self._port = None

    # -- where it is ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._port

    @property
    def host_port(self) -> str:
        """``"127.0.0.1:P"``: the value for FAL_QUEUE_RUN_HOST / FAL_RUN_HOST."""
        return f"{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"https://{self.host_port}"

    @property
    def ca_bundle(self) -> str:
        """Path of a CA bundle trusting the emulator and every public CA (for SSL_CERT_FILE)."""
        return str(self._tls.ca_bundle)

    @property
    def config(self) -> EmulatorConfig:
        return self._config

    def env(self) -> dict[str, str]:
        """The environment that points fal_client (imported afterwards) at this server."""
        return {
            "FAL_QUEUE_RUN_HOST": self.host_port,
            "FAL_RUN_HOST": self.host_port,
            "SSL_CERT_FILE": self.ca_bundle,
            EMULATOR_ENV: self.host_port,
        }

    # -- control (safe from any thread) --------------------------------------------------------
    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change the config of the running server (jobs and counters are kept)."""
        config = EmulatorConfig.model_validate({**self._config.model_dump(), **changes})
        return self._on_loop(partial(self._apply_config, config))

    def reset(self, config: EmulatorConfig | None = None) -> None:
        """Drop all jobs and zero all counters; optionally replace the config."""
        self._on_loop(partial(self._reset, config))

    def stats(self) -> dict[str, Any]:
        """A deep copy of the counters and the current number of jobs per state."""
        return self._on_loop(self._stats)

    def _on_loop(self, fn: Callable[[], T]) -> T:
        loop = self._loop
        if loop is None or not loop.is_running() or threading.get_ident() == self._loop_thread:
            return fn()

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=30)

    def _apply_config(self, config: EmulatorConfig) -> EmulatorConfig:
        self._config = config
        self._resize_pool()
        self._kick()
        return config

    def _reset(self, config: EmulatorConfig | None) -> None:
        self._drop_jobs()
        self._counters = _Counters()
        if config is not None:
            self._apply_config(config)

    def _drop_jobs(self) -> None:
        for job in self._jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
                self._dying.add(job.task)  # keep a reference until the cancellation has run
                job.task.add_done_callback(self._dying.discard)
            if job.video is not None:
                job.video.unlink(missing_ok=True)
        self._jobs.clear()
        self._queue.clear()
        self._running.clear()

    def _stats(self) -> dict[str, Any]:
        c = self._counters
        jobs = collections.Counter(job.state for job in self._jobs.values())
        billed = sum(job.request.cost_usd() for job in self._jobs.values() if job.state == "ok")
        return copy.deepcopy(
            {
                "submissions": c.submissions,
                "submit_calls": c.submit_calls,
                "submissions_by_input": dict(c.submissions_by_input),
                "submissions_by_fingerprint": dict(c.submissions_by_fingerprint),
                "cancels": c.cancels,
                "cancel_calls": c.cancel_calls,
                "status_calls": c.status_calls,
                "result_calls": c.result_calls,
                "downloads": dict(c.downloads),
                "faults": dict(c.faults),
                "jobs": {state: jobs.get(state, 0) for state in JOB_STATES},
                "billed_usd": round(billed, 2),
            }
        )

    # -- scheduler -----------------------------------------------------------------------------
    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _resize_pool(self) -> None:
        workers = max(1, min(self._config.concurrency, os.cpu_count() or 1))
        if self._pool is not None and self._pool_workers == workers:
            return
        if self._pool is not None:
            self._pool.shutdown(wait=False)  # renders already running finish on the old pool
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="kling-lab-render")
        self._pool_workers = workers

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
        while self._queue and len(self._running) < self._config.concurrency:
            head = self._jobs[self._queue[0]]
            wait = head.submitted + self._config.queue_delay_s - now
            if wait > 0:
                return wait
            self._queue.popleft()
            self._running.add(head.request_id)
            # In progress from now, not from when the task first runs: a status call in between
            # must not look for the job in the queue it has just left.
            head.state, head.started = "in_progress", time.monotonic()
            head.task = asyncio.get_running_loop().create_task(self._run_job(head))
        return None

    async def _run_job(self, job: _Job) -> None:
        req = job.request
        job.log(f"Processing started: {req.duration} s, {req.aspect_ratio}, cfg_scale {req.cfg_scale}")
        try:
            if job.blocked:
                await asyncio.sleep(min(0.5, self._config.service_time_s * 0.1))
                job.finish("failed", error=CONTENT_POLICY_MESSAGE, error_type="content_policy_violation")
                self._counters.faults["content_policy"] += 1
                return
            rendering = self._render(job)
            await asyncio.gather(rendering, asyncio.sleep(self._config.service_time_s))
            job.video = await rendering
            job.finish("ok")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a render that crashed: a 500 for the result, like a model error
            job.finish("failed", error=f"Rendering failed: {exc}", error_type="internal_server_error")
        finally:
            self._running.discard(job.request_id)
            self._kick()

    def _render(self, job: _Job) -> asyncio.Future[Path]:
        """Render ``job``'s video in the pool; a cancelled job's file is deleted when the thread ends."""
        assert self._pool is not None and self._files is not None
        req, path = job.request, self._files / job.file_name
        width, height = output_size(req.aspect_ratio, self._config.render_scale)
        job.log(f"Rendering placeholder video {width}x{height} at {self._config.fps} fps")
        variation = int.from_bytes(hashlib.sha256(f"{self._config.seed}|{job.key}".encode()).digest()[:8], "big")
        render = partial(
            render_placeholder,
            prompt=req.prompt,
            negative_prompt=req.negative_prompt,
            cfg_scale=req.cfg_scale,
            aspect_ratio=req.aspect_ratio,
            duration_s=req.duration_s,
            width=width,
            height=height,
            fps=self._config.fps,
            variation_seed=variation,
        )
        future = self._pool.submit(_render_atomically, render, path)
        wrapped = asyncio.wrap_future(future)

        def discard_if_cancelled(done: asyncio.Future[Path]) -> None:
            if done.cancelled():  # the thread cannot be stopped: delete its file when it ends
                future.add_done_callback(lambda _: path.unlink(missing_ok=True))

        wrapped.add_done_callback(discard_if_cancelled)
        return wrapped

    def _submit_job(self, request: KlingRequest, input_hash: str, fingerprint: str | None) -> _Job:
        c = self._counters
        key = job_key(input_hash, c.submissions_by_input[input_hash])
        blocked = self._config.blocks_prompt(request.prompt) or self._config.chance(
            self._config.rate_content_policy, key, "content_policy"
        )
        job = _Job(request_id=str(uuid.uuid4()), key=key, request=request, blocked=blocked)
        job.log(f"kling_lab emulator: a local stand-in for {ENDPOINT}; videos are placeholders, not Kling output")
        job.log("Request queued")
        c.submissions += 1
        c.submissions_by_input[input_hash] += 1
        if fingerprint:
            c.submissions_by_fingerprint[fingerprint] += 1
        self._jobs[job.request_id] = job
        self._queue.append(job.request_id)
        self._kick()
        return job

    def _cancel_job(self, job: _Job) -> None:
        if job.state == "queued":
            self._queue.remove(job.request_id)
        elif job.task is not None:
            job.task.cancel()
            self._running.discard(job.request_id)
            self._kick()
        job.finish("cancelled", error=CANCELLED_MESSAGE, error_type="request_cancelled")
        self._counters.cancels += 1

    # -- HTTP ----------------------------------------------------------------------------------
    def _app(self) -> web.Application:
        app = web.Application(middlewares=[_json_errors], client_max_size=1024**2)
        app.on_response_prepare.append(_mark_emulator)
        app.router.add_post(f"/{ENDPOINT}", self._h_submit)
        for prefix in REQUEST_PREFIXES:
            app.router.add_get(f"/{prefix}/requests/{{request_id}}/status", self._h_status)
            app.router.add_get(f"/{prefix}/requests/{{request_id}}", self._h_result)
            app.router.add_put(f"/{prefix}/requests/{{request_id}}/cancel", self._h_cancel)
        app.router.add_get("/_emulator/files/{request_id}/{name}", self._h_file)
        app.router.add_get("/_emulator/stats", self._h_stats)
        app.router.add_get("/_emulator/config", self._h_get_config)
        app.router.add_post("/_emulator/config", self._h_config)
        app.router.add_post("/_emulator/reset", self._h_reset)
        return app

    def _urls(self, request_id: str) -> dict[str, str]:
        base = f"{self.base_url}/{APP_PREFIX}/requests/{request_id}"
        return {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}

    def _fault(
        self, http: web.Request, call: str, key: str, request_id: str | None = None
    ) -> web.StreamResponse | None:
        """The infrastructure fault response for this call, or None to go on."""
        fault = self._config.http_fault(call, key, self._counters.next_ordinal(call, key))
        if fault is None:
            return None
        self._counters.faults[fault] += 1
        if fault == "drop":
            return _drop(http)
        status, error_type, message = INFRA_ERRORS[fault]
        headers = {"X-Fal-Error-Type": error_type}
        if fault == "429":
            headers["Retry-After"] = f"{self._config.retry_after_s:g}"
        return _json({"detail": message, "error_type": error_type}, status, request_id, headers)

    def _expired(self, job: _Job) -> bool:
        return job.finished is not None and time.monotonic() - job.finished > self._config.result_ttl_s

    async def _h_submit(self, http: web.Request) -> web.StreamResponse:
        if not _authorized(http):
            return _unauthorized()
        try:
            body = await http.json()
        except ValueError:
            return _json({"detail": [{"loc": ["body"], "msg": "Invalid JSON body", "type": "json_invalid"}]}, 422)
        try:
            request = KlingRequest.model_validate(body)
        except ValidationError as exc:
            return _json({"detail": _validation_detail(exc)}, 422)
        self._counters.submit_calls += 1
        input_hash = input_sha256(request)
        if (fault := self._fault(http, "submit", input_hash)) is not None:
            return fault
        job = self._submit_job(request, input_hash, http.headers.get("X-Kling-Lab-Fingerprint"))
        if self._config.chance(self._config.rate_lost_submit, job.key, "lost_submit"):
            self._counters.faults["lost_submit"] += 1
            return _drop(http)
        body = {"request_id": job.request_id, **self._urls(job.request_id), "queue_position": len(self._queue) - 1}
        return _json(body, 200, job.request_id)

    async def _h_status(self, http: web.Request) -> web.StreamResponse:
        if not _authorized(http):
            return _unauthorized()
        self._counters.status_calls += 1
        request_id = http.match_info["request_id"]
        job = self._jobs.get(request_id)
        if (fault := self._fault(http, "status", job.key if job else request_id, request_id)) is not None:
            return fault
        if job is None:
            return _json({"detail": f"Request {request_id} not found"}, 404, request_id)
        with_logs = http.query.get("logs", "").lower() in ("1", "true", "yes")
        logs = copy.deepcopy(job.logs) if with_logs else None
        body: dict[str, Any] = {"request_id": request_id, "response_url": self._urls(request_id)["response_url"]}
        if job.state == "queued":
            body.update(status="IN_QUEUE", queue_position=self._queue.index(request_id), logs=None)
        elif job.state == "in_progress":
            body.update(status="IN_PROGRESS", logs=logs)
        else:
            seconds = job.inference_time()
            metrics = {} if seconds is None else {"inference_time": round(seconds, 4)}
            body.update(status="COMPLETED", logs=logs, metrics=metrics, error=job.error, error_type=job.error_type)
        return _json(body, 200, request_id)

    async def _h_result(self, http: web.Request) -> web.StreamResponse:
        if not _authorized(http):
            return _unauthorized()
        self._counters.result_calls += 1
        request_id = http.match_info["request_id"]
        job = self._jobs.get(request_id)
        if (fault := self._fault(http, "result", job.key if job else request_id, request_id)) is not None:
            return fault
        if job is None:
            return _json({"detail": f"Request {request_id} not found"}, 404, request_id)
        if not job.done:
            return _json({"detail": "Request is still in progress"}, 400, request_id)
        if self._expired(job):
            return _json({"detail": "Request result expired"}, 410, request_id)
        if job.state == "cancelled":
            return _json({"detail": CANCELLED_MESSAGE, "error_type": "request_cancelled"}, 400, request_id)
        if job.error_type == "content_policy_violation":
            detail = [{"loc": ["body", "prompt"], "msg": job.error, "type": "content_policy_violation"}]
            return _json({"detail": detail}, 422, request_id, {"X-Fal-Error-Type": "content_policy_violation"})
        if job.state == "failed":
            return _json({"detail": job.error, "error_type": job.error_type}, 500, request_id)
        assert job.video is not None
        video = {
            "url": f"{self.base_url}/_emulator/files/{request_id}/{job.file_name}",
            "content_type": "video/mp4",
            "file_name": job.file_name,
            "file_size": job.video.stat().st_size,
        }
        return _json({"video": video}, 200, request_id)

    async def _h_cancel(self, http: web.Request) -> web.StreamResponse:
        if not _authorized(http):
            return _unauthorized()
        self._counters.cancel_calls += 1
        request_id = http.match_info["request_id"]
        job = self._jobs.get(request_id)
        if (fault := self._fault(http, "cancel", job.key if job else request_id, request_id)) is not None:
            return fault
        if job is None:
            return _json({"status": "NOT_FOUND"}, 404, request_id)
        if job.done:
            return _json({"status": "ALREADY_COMPLETED"}, 400, request_id)
        self._cancel_job(job)
        return _json({"status": "CANCELLATION_REQUESTED"}, 202, request_id)

    async def _h_file(self, http: web.Request) -> web.StreamResponse:
        request_id = http.match_info["request_id"]
        job = self._jobs.get(request_id)
        if job is None or job.video is None or http.match_info["name"] != job.file_name:
            return _json({"detail": "File not found"}, 404, request_id)
        if self._expired(job):
            return _json({"detail": "File expired"}, 410, request_id)
        if http.method == "HEAD":
            return web.FileResponse(job.video, headers={"Content-Type": "video/mp4"})
        self._counters.downloads[request_id] += 1
        if (fault := self._fault(http, "download", job.key, request_id)) is not None:
            return fault
        ordinal = self._counters.downloads[request_id] - 1
        if self._config.chance(self._config.rate_truncated_video, job.key, "truncated_video", ordinal):
            self._counters.faults["truncated_video"] += 1
            return await _truncated(http, job.video, request_id)
        return web.FileResponse(job.video, headers={"Content-Type": "video/mp4", "x-fal-request-id": request_id})

    async def _h_stats(self, http: web.Request) -> web.StreamResponse:
        return _json(self._stats(), 200)

    async def _h_get_config(self, http: web.Request) -> web.StreamResponse:
        return _json(self._config.model_dump(mode="json"), 200)

    async def _h_config(self, http: web.Request) -> web.StreamResponse:
        """Body: a JSON object of changes to the current config. Answers the new config."""
        config = await _config_from_body(http, self._config)
        if isinstance(config, web.Response):
            return config
        return _json(self._apply_config(config).model_dump(mode="json"), 200)

    async def _h_reset(self, http: web.Request) -> web.StreamResponse:
        """Body (optional): a JSON object of config fields replacing the config (unset = defaults)."""
        config = await _config_from_body(http, EmulatorConfig()) if await http.read() else None
        if isinstance(config, web.Response):
            return config
        self._reset(config)
        return _json(self._stats(), 200)


# -- small HTTP helpers ------------------------------------------------------------------------
def _render_atomically(render: Callable[..., None], path: Path) -> Path:
    """Render to a temporary name, then rename, so a half-written file is never served."""
    partial_path = path.with_name(f".{path.name}.part")
    render(partial_path)
    os.replace(partial_path, path)
    return path


def _json(body: Any, status: int, request_id: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    all_headers = dict(headers or {})
    if request_id is not None:
        all_headers["x-fal-request-id"] = request_id
    return web.json_response(body, status=status, headers=all_headers)


def _authorized(http: web.Request) -> bool:
    """fal's ``Authorization: Key …`` header is present (its value is never logged or kept)."""
    value = http.headers.get("Authorization", "")
    return value.startswith("Key ") and len(value) > len("Key ")


def _unauthorized() -> web.Response:
    return _json({"detail": "Missing or malformed Authorization header (expected 'Key <FAL_KEY>')"}, 401)


def _validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors in fal's (FastAPI's) 422 shape."""
    return [
        {"loc": ["body", *[str(part) for part in error["loc"]]], "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False)
    ]


def _drop(http: web.Request) -> web.Response:
    """Close the connection without answering; the returned response is never sent."""
    if http.transport is not None:
        http.transport.close()
    return web.Response(status=500)


async def _truncated(http: web.Request, path: Path, request_id: str) -> web.StreamResponse:
    """Announce the full Content-Length, send part of the body, then close the connection."""
    data = path.read_bytes()
    response = web.StreamResponse(headers={"Content-Type": "video/mp4", "x-fal-request-id": request_id})
    response.content_length = len(data)
    await response.prepare(http)
    await response.write(data[: len(data) // 2])
    if http.transport is not None:
        http.transport.close()
    return response


async def _config_from_body(http: web.Request, base: EmulatorConfig) -> EmulatorConfig | web.Response:
    """``base`` updated with the JSON object in the body, or a 422 response."""
    try:
        changes = await http.json()
        return EmulatorConfig.model_validate({**base.model_dump(), **changes})
    except ValidationError as exc:
        return _json({"detail": _validation_detail(exc)}, 422)
    except (ValueError, TypeError):
        return _json({"detail": "expected a JSON object of EmulatorConfig fields"}, 422)


@web.middleware
async def _json_errors(
    http: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Router errors (404, 405, 413) as fal-style JSON."""
    try:
        return await handler(http)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json({"detail": f"{exc.reason}: {http.method} {http.path}"}, exc.status)


async def _mark_emulator(http: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Kling-Lab-Emulator"] = "1"
