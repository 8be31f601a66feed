"""Signals through the real CLI in a subprocess: SIGTERM is handled like Ctrl-C (in-flight requests
cancelled at fal, summary printed, exit 143), and a Ctrl-C in the first second shows no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kling_lab.store.run_store import load_runs

ROOT = Path(__file__).resolve().parents[1]
SLOW = dict(queue_delay_s=0.05, service_time_s=60.0, render_scale=0.25, concurrency=8)


def kling_lab_command() -> list[str]:
    """The console script a user runs (``python -m`` differs: CPython turns a KeyboardInterrupt
    ever raised inside exec'd string code into exit -2 under ``-m``, even when it was handled)."""
    script = Path(sys.executable).parent / "kling-lab"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from kling_lab.cli import main; sys.exit(main())"]


def catches_sigterm(pid: int) -> bool:
    """Has the process installed a SIGTERM handler (kling-lab's main does, first thing)?"""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*kling_lab_command(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),  # KLING_LAB_EMULATOR: the session's emulator
        cwd=ROOT,
    )


def wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def slow_emulator(emulator):
    emulator.configure(**SLOW)
    return emulator


def test_sigterm_cancels_in_flight_requests_prints_the_summary_and_exits_143(slow_emulator, tmp_path):
    sweep = tmp_path / "three.yaml"
    sweep.write_text("name: three\nprompt: a kite\ngrid: {cfg_scale: [0.1, 0.5, 0.9]}\n")
    store = tmp_path / "store"
    proc = start_cli("run", str(sweep), "--store", str(store), "--no-progress")
    try:
        # fal has the 3 jobs; their answers may still be on the way: an interrupted submit is
        # waited for, journaled and cancelled (no sleep to let the answers arrive first)
        wait_for(lambda: slow_emulator.stats()["submissions"] == 3)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert "terminated (SIGTERM); in-flight requests were cancelled at fal" in err
    assert "3 cancelled" in err  # the summary
    assert slow_emulator.stats()["cancels"] == 3
    df = load_runs(store)
    assert len(df) == 3 and set(df["status"]) == {"cancelled"}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to see the handler")
@pytest.mark.parametrize("delay_s", [0.0, 0.1, 0.25, 0.5, 0.75, 1.0])
def test_ctrl_c_in_the_first_second_shows_no_traceback(delay_s, slow_emulator, tmp_path):
    """From the moment kling-lab's code runs (its SIGTERM handler is the first thing it installs),
    through the imports, the emulator's start and the first submits: one line, exit 130. (Before
    that, Python itself is still starting: a Ctrl-C there is Python's, not kling-lab's.)"""
    sweep = tmp_path / "one.yaml"
    sweep.write_text("name: one\nprompt: a kite\n")
    proc = start_cli("run", str(sweep), "--store", str(tmp_path / "store"), "--no-progress")
    try:
        wait_for(lambda: proc.poll() is not None or catches_sigterm(proc.pid), timeout_s=30)
        time.sleep(delay_s)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err, err
    assert proc.returncode == 130, err
    assert "interrupted" in err
