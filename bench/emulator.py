"""The fal emulator in its own process, so the bench process's CPU time is the client's alone.

:func:`start_emulator` runs ``python -m kling_lab.cli emulator --port 0``, reads the
``export ...`` line it prints and puts those variables (``FAL_QUEUE_RUN_HOST``,
``FAL_RUN_HOST``, ``SSL_CERT_FILE``, ``KLING_LAB_EMULATOR``) in this process's
environment: call it before anything imports ``fal_client``. The emulator is then
driven over its HTTP control API (``/_emulator/reset``, ``/_emulator/stats``) and its
CPU time is read with psutil, so every figure can be given with and without it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil

EMULATOR_ENV_VARS = ("FAL_QUEUE_RUN_HOST", "FAL_RUN_HOST", "SSL_CERT_FILE", "KLING_LAB_EMULATOR")
START_TIMEOUT_S = 60.0


@dataclass
class ExternalEmulator:
    """A running ``kling-lab emulator`` child process and the way to talk to it."""

    process: subprocess.Popen[str]
    env: dict[str, str]
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._http = httpx.Client(base_url=f"https://{self.host_port}", verify=self.env["SSL_CERT_FILE"], timeout=30.0)
        self._ps = psutil.Process(self.process.pid)

    @property
    def host_port(self) -> str:
        return self.env["KLING_LAB_EMULATOR"]

    def reset(self, **config: Any) -> None:
        """Drop every job, zero the counters and replace the config (unset fields: defaults)."""
        self._http.post("/_emulator/reset", json=config).raise_for_status()

    def stats(self) -> dict[str, Any]:
        """The emulator's counters (``submissions``, ``status_calls``, ``downloads``, ...)."""
        response = self._http.get("/_emulator/stats")
        response.raise_for_status()
        return response.json()

    def cpu_s(self) -> float:
        """CPU seconds (user + system, all threads) the emulator process has used so far."""
        times = self._ps.cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        """Stop with SIGINT, so the emulator deletes its rendered files and its CA bundle."""
        self._http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_emulator(*, concurrency: int = 16) -> ExternalEmulator:
    """Start the emulator child process and point this process's environment (fal_client) at it."""
    if "fal_client" in sys.modules:
        raise RuntimeError("fal_client is already imported: start the emulator before anything imports it")
    env = {k: v for k, v in os.environ.items() if k not in EMULATOR_ENV_VARS}  # not a parent's emulator
    env.pop("FAL_KEY", None)
    command = [sys.executable, "-m", "kling_lab.cli", "emulator", "--port", "0", "--concurrency", str(concurrency)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    exports = _read_exports(process)
    os.environ.update(exports)
    return ExternalEmulator(process, exports)


def _read_exports(process: subprocess.Popen[str]) -> dict[str, str]:
    """Parse the ``export A=1 B=2`` line the emulator prints once it listens."""
    found: dict[str, str] = {}

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("export "):
                found.update(word.split("=", 1) for word in shlex.split(line[len("export ") :]))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_S)
    missing = [name for name in EMULATOR_ENV_VARS if name not in found]
    if missing:
        process.kill()
        raise RuntimeError(f"the emulator did not start (no {', '.join(missing)} in its output)")
    return {name: found[name] for name in EMULATOR_ENV_VARS}
