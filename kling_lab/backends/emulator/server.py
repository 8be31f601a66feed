"""The emulator's lifecycle: an HTTPS server on loopback speaking fal's queue protocol.

The real, unmodified ``fal_client`` talks to it (point ``FAL_QUEUE_RUN_HOST`` at it before
fal_client is imported, and trust its CA through ``SSL_CERT_FILE``). The pieces: the queue
model (``queue.py``), the HTTP app (``app.py``), fault injection (``faults.py``) and the served
endpoints (``video.py``: every registered model). All state lives on the server's own event loop (a
:class:`~kling_lab.util.loop_thread.LoopThread`); :meth:`EmulatorServer.stats`,
:meth:`~EmulatorServer.configure` and :meth:`~EmulatorServer.reset` hop onto it, so they are
safe from any thread.
"""

from __future__ import annotations

import asyncio
import shlex
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aiohttp import web

from kling_lab.backends.emulator.app import EmulatorApp
from kling_lab.backends.emulator.config import EmulatorConfig
from kling_lab.backends.emulator.endpoints import ModelEndpoint, Workshop
from kling_lab.backends.emulator.queue import JobQueue
from kling_lab.backends.emulator.tls import emulator_tls
from kling_lab.backends.pricing import PRICING_URL_ENV
from kling_lab.util.loop_thread import LoopThread

EMULATOR_ENV = "KLING_LAB_EMULATOR"
CONTROL_TIMEOUT_S = 30.0

T = TypeVar("T")


class EmulatorServer:
    """fal's queue API on ``https://host:port``, served from a background thread or the foreground."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        endpoints: Iterable[ModelEndpoint[Any]] | None = None,
    ) -> None:
        self._queue = JobQueue(config or EmulatorConfig())
        self._endpoints = tuple(endpoints) if endpoints is not None else None  # None: every registered model
        self._host, self._requested_port = host, port
        self._port: int | None = None
        self._tls = emulator_tls()
        self._thread = LoopThread("kling-lab-emulator")
        self._runner: web.AppRunner | None = None
        self._shop: Workshop | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> EmulatorServer:
        """Serve from a daemon thread with its own event loop; returns once listening."""
        if self._thread.running:
            return self
        self._thread.start()
        try:
            self._thread.call(self._startup(), timeout=CONTROL_TIMEOUT_S)
        except BaseException:
            self._thread.stop(self._shutdown())
            raise
        return self

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C), printing how to point clients here."""
        self.start()
        try:
            print(f"kling_lab emulator (placeholder videos, not Kling output) on {self.host_port}", flush=True)
            exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in self.env().items())
            print(f"export {exports}", flush=True)
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving, cancel all jobs and delete the output files."""
        self._thread.stop(self._shutdown() if self._thread.running else None)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _startup(self) -> None:
        self._shop = Workshop(self._queue, base_url=lambda: self.base_url)
        await self._queue.start()
        app = EmulatorApp(self._queue, self._shop, self._endpoints, base_url=lambda: self.base_url)
        self._runner = web.AppRunner(app.application(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._requested_port, ssl_context=self._tls.server_context)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        await self._queue.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._shop is not None:
            self._shop.close()
        self._runner = self._shop = self._port = None

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
        return self._queue.config

    def env(self) -> dict[str, str]:
        """The environment that points fal_client (imported afterwards) at this server."""
        return {
            "FAL_QUEUE_RUN_HOST": self.host_port,
            "FAL_RUN_HOST": self.host_port,
            "SSL_CERT_FILE": self.ca_bundle,
            PRICING_URL_ENV: f"{self.base_url}/v1",
            EMULATOR_ENV: self.host_port,
        }

    # -- control (safe from any thread) --------------------------------------------------------
    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change the config of the running server (jobs and counters are kept)."""
        config = EmulatorConfig.model_validate({**self.config.model_dump(), **changes})
        return self._on_loop(lambda: self._queue.configure(config))

    def reset(self, config: EmulatorConfig | None = None) -> None:
        """Drop all jobs, uploads and counters; optionally replace the config."""

        def reset() -> None:
            self._queue.reset(config)
            if self._shop is not None:
                self._shop.storage.clear()

        self._on_loop(reset)

    def stats(self) -> dict[str, Any]:
        """A deep copy of the counters and the current number of jobs per state."""
        return self._on_loop(self._queue.stats)

    def _on_loop(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the server's loop (directly when not serving or already on it)."""
        if not self._thread.running:
            return fn()
        try:
            on_loop = asyncio.get_running_loop() is self._thread.loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            return fn()

        async def call() -> T:
            return fn()

        return self._thread.call(call(), timeout=CONTROL_TIMEOUT_S)
