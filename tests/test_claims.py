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
    claims.release("k")


def test_unreadable_or_incomplete_claims_are_free(tmp_path):
    claims = Claims(tmp_path / "nested" / "claims")  # created on first use, parents too
    assert claims.holder("missing") is None
    claims.directory.mkdir(parents=True)
    (claims.directory / "torn.lock").write_text('{"pid": ')  # info cut short; no process holds its lock
    (claims.directory / "nopid.lock").write_text(json.dumps({"host": socket.gethostname()}))
    assert claims.holder("torn") is None and claims.holder("nopid") is None
    assert claims.try_acquire("torn") and claims.try_acquire("nopid") and claims.try_acquire("fresh")


def test_releasing_a_claim_whose_file_is_gone_is_quiet(tmp_path):
    claims = Claims(tmp_path)
    assert claims.try_acquire("k")
    (tmp_path / "k.lock").unlink()  # e.g. the claims directory was cleaned up meanwhile
    claims.release("k")
    assert claims.try_acquire("k")
