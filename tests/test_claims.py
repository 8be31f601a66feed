"""Claims: an OS lock per request key, released by the kernel when its process dies (issue 12 item 6)."""

import json
import os
import signal
import socket
import subprocess
import sys

from kling_lab.runner.claims import Claims


def test_exclusive_until_released(tmp_path):
    a, b = Claims(tmp_path), Claims(tmp_path)
    assert a.try_acquire("k")
    assert not a.try_acquire("k"), "a second job of the same process waits too"
    assert not b.try_acquire("k")
    holder = b.holder("k")
    assert holder is not None and holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    a.release("k")
    assert b.holder("k") is None
    assert b.try_acquire("k")
    b.release_all()
    assert list(tmp_path.iterdir()) == []


def test_a_claim_file_naming_a_live_pid_is_not_a_claim(tmp_path):
    """The repro: a claim file left behind naming a live process (a reused PID) made runs wait forever."""
    live = {"pid": os.getppid(), "host": socket.gethostname()}  # certainly alive: our parent
    (tmp_path / "k.lock").write_text(json.dumps(live))
    (tmp_path / "k.claim").write_text(json.dumps(live))  # the old format, too
    claims = Claims(tmp_path)
    assert claims.holder("k") is None, "only a held lock is a claim, never a file's content"
    assert claims.try_acquire("k")
    assert json.loads((tmp_path / "k.lock").read_text())["pid"] == os.getpid()


def test_claim_of_a_sigkilled_process_is_free_at_once(tmp_path):
    code = (
        "from kling_lab.runner.claims import Claims; import pathlib, sys, time;"
        f"c = Claims(pathlib.Path({str(tmp_path)!r})); print(c.try_acquire('k'), flush=True); time.sleep(600)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "True"
        assert not Claims(tmp_path).try_acquire("k")
        assert Claims(tmp_path).holder("k")["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    claims = Claims(tmp_path)
    assert claims.holder("k") is None, "the kernel released the lock with the process"
    assert claims.try_acquire("k")
