"""Shared fixtures.

One emulator server is started per test session (fal-client reads its host from the
environment when it is first imported, so it must be up before anything imports
fal_client); each test gets it reset to a fast, small-render configuration.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

# Never let a test reach the real fal or read a developer's key.
os.environ.pop("FAL_KEY", None)
os.environ.pop("FAL_KEY_ID", None)
os.environ.pop("FAL_KEY_SECRET", None)
os.environ.setdefault("MPLBACKEND", "Agg")

# Tests send Ctrl-C (SIGINT) to the CLIs they start. A process started in the background by a
# non-interactive shell (``pytest &``, nohup, some CI runners) ignores SIGINT, and an ignored signal
# stays ignored in every child: their Ctrl-C tests would then fail for the launcher's reason, not
# kling-lab's. A handled signal is reset to its default in a child, as a terminal's Ctrl-C expects.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from kling_lab.backends.emulator import EmulatorConfig, EmulatorServer, ensure_emulator

FAST = dict(queue_delay_s=0.05, service_time_s=0.1, render_scale=0.25, concurrency=8)


# Start it now, at conftest import, before any test module imports fal_client.
_EMULATOR = ensure_emulator(EmulatorConfig(**FAST))


@pytest.fixture(scope="session")
def emulator_session() -> EmulatorServer:
    return _EMULATOR


@pytest.fixture
def emulator(emulator_session: EmulatorServer) -> EmulatorServer:
    """The session's emulator, reset (no jobs, zeroed counters) and set to the fast config."""
    emulator_session.reset(EmulatorConfig(**FAST))
    return emulator_session


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default store at tmp_path so no test writes into the checkout."""
    store = tmp_path / "kling_runs"
    monkeypatch.setenv("KLING_LAB_STORE", str(store))
    return store
