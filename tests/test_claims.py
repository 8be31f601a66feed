"""Claims: exclusive per key, owned by a live process, stale claims taken over."""

import json
import socket
import subprocess
import sys

from kling_lab.runner.claims import Claims


def test_exclusive_until_released(tmp_path):
    a, b = Claims(tmp_path), Claims(tmp_path)
    assert a.try_acquire("k")
    assert not a.try_acquire("k"), "a second job of the same process waits too"
    assert not b.try_acquire("k")
    assert b.holder("k") is not None
    a.release("k")
    assert b.try_acquire("k")
    b.release_all()
    assert list(tmp_path.iterdir()) == []


def test_claim_of_a_dead_process_is_stale(tmp_path):
    pid = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )
    (tmp_path / "k.claim").write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    claims = Claims(tmp_path)
    assert claims.holder("k") is None
    assert claims.try_acquire("k")
    assert json.loads((tmp_path / "k.claim").read_text())["pid"] != pid


def test_claim_held_by_a_live_process_in_another_interpreter(tmp_path):
    code = (
        f"from kling_lab.runner.claims import Claims; import sys, time; c = Claims(__import__('pathlib').Path({str(tmp_path)!r}));"
        "print(c.try_acquire('k'), flush=True); sys.stdin.readline()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "True"
        assert not Claims(tmp_path).try_acquire("k")
    finally:
        proc.communicate("\n", timeout=30)
    assert Claims(tmp_path).try_acquire("k"), "its process ended without releasing: stale"


def test_unreadable_or_incomplete_claims_are_stale(tmp_path):
    claims = Claims(tmp_path / "nested" / "claims")  # created on first use, parents too
    assert claims.holder("missing") is None
    claims.directory.mkdir(parents=True)
    (claims.directory / "torn.claim").write_text('{"pid": ')  # a claim cut short
    (claims.directory / "nopid.claim").write_text(json.dumps({"host": socket.gethostname()}))
    assert claims.holder("torn") is None and claims.holder("nopid") is None
    assert claims.try_acquire("torn") and claims.try_acquire("nopid") and claims.try_acquire("fresh")


def test_releasing_a_claim_whose_file_is_gone_is_quiet(tmp_path):
    claims = Claims(tmp_path)
    assert claims.try_acquire("k")
    (tmp_path / "k.claim").unlink()  # e.g. the claims directory was cleaned up meanwhile
    claims.release("k")
    assert claims.try_acquire("k")
