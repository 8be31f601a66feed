"""Before the first submit: the plan (what the cache covers, what is left to pay), the key guard
(no loopback address passes as fal) and the pre-flight (connect + TLS) of the backend's host."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trustme

from kling_lab.backends import preflight
from kling_lab.backends.fal import is_loopback, translate_error
from kling_lab.backends.preflight import check_reachable, is_loopback_address
from kling_lab.cli.app import main
from kling_lab.errors import BackendConfigError
from kling_lab.runner.api import make_runner
from kling_lab.runner.journal import Journal
from kling_lab.runner.plan import Plan
from kling_lab.sweep import Sweep
from kling_lab.util.clock import utcnow
from kling_lab.util.loop_thread import LoopThread

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict[str, str | None], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    full = {**os.environ}
    for key, value in env.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    return subprocess.run(
        [sys.executable, "-m", "kling_lab.cli", *args], capture_output=True, text=True, env=full, timeout=timeout
    )


def sweep_file(tmp_path: Path, values: list[float], name: str = "s") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nprompt: a paper boat\ngrid: {{cfg_scale: {values}}}\n")
    return path


# -- item 10: the estimate before a re-run ---------------------------------------------------
def test_the_line_before_a_rerun_shows_the_cache_and_what_is_left_to_pay(emulator, tmp_path, capsys):
    store = tmp_path / "store"
    five = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert main(["run", str(sweep_file(tmp_path, five)), "--store", str(store), "--no-progress"]) == 0
    first = capsys.readouterr().err
    assert "5 requests: 5 to submit (5 × 5 s); $7.00 at fal prices" in first
    seven = [*five, 0.6, 0.7]
    assert main(["run", str(sweep_file(tmp_path, seven)), "--store", str(store), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "7 requests: 5 from the cache ($0), 2 to submit (2 × 5 s); $2.80 at fal prices" in err, err
    assert "$9.80" not in err
    assert emulator.stats()["submissions"] == 7


def test_the_plan_counts_journaled_requests_as_not_paid_again(emulator, tmp_path):
    sweep = Sweep.grid("p", prompt="a", cfg_scale=[0.1, 0.2, 0.3])
    runner = make_runner("emulator", tmp_path / "store", progress=False)
    item = sweep.items[0]
    Journal(runner.store.journal_dir).submitted(
        request_id="req-earlier",
        fingerprint=item.fingerprint,
        backend="emulator",
        endpoint=item.request.endpoint_id,
        input=item.request.arguments(),
        submitted_at=utcnow(),
        sweep={"repeat": 0},
    )
    plan = runner.plan(sweep)
    assert (plan.total, plan.cached, plan.reattached, plan.to_submit, plan.to_pay_usd) == (3, 0, 1, 2, 2.8)
    assert "1 already submitted (collected, not paid again), 2 to submit" in plan.describe("emulator", 4)


def test_the_fal_line_names_what_is_left_to_pay_and_the_cap():
    plan = Plan("s-1", total=7, cached=5, reattached=0, to_submit=2, to_pay_usd=2.8, by_duration={"5": 2})
    line = plan.describe("fal", 4, 25.0)
    assert line.startswith("fal: 7 requests: 5 from the cache ($0), 2 to submit (2 × 5 s); $2.80 to pay")
    assert line.endswith("cap $25.00") and "9.80" not in line


# -- item 11: the key guard ------------------------------------------------------------------
@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.2:8443",
        "127.255.255.254:443",
        "[::1]:443",
        "localhost:1",
        "LOCALHOST",
        "fal.localhost:443",
        "[::ffff:127.0.0.2]:443",
        "0.0.0.0:443",
        "[::]:443",
        "127.1:443",
        "2130706433:443",
    ],
)
def test_every_loopback_form_is_loopback(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["queue.fal.run", "queue.fal.run:443", "10.0.0.1", "[2001:db8::1]:443", "fal.run"])
def test_real_hosts_are_not_loopback(host):
    assert not is_loopback(host)


@pytest.mark.parametrize("host", ["127.0.0.2", "127.0.0.53", "[::ffff:127.0.0.1]", "0.0.0.0", "127.1"])
def test_the_fal_backend_refuses_any_loopback_host_with_a_key(host, emulator, tmp_path):
    path = sweep_file(tmp_path, [0.5])
    store = tmp_path / "store"
    proc = cli(
        "run",
        str(path),
        "--backend",
        "fal",
        "--store",
        str(store),
        env={
            "FAL_KEY": "fal-test-key-0000",
            "FAL_QUEUE_RUN_HOST": f"{host}:{emulator.port}",
            "FAL_RUN_HOST": f"{host}:{emulator.port}",
            "KLING_LAB_EMULATOR": None,
        },
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "loopback" in proc.stderr
    assert "fal-test-key-0000" not in proc.stderr + proc.stdout
    assert emulator.stats()["submissions"] == 0 and not store.exists()


def test_a_name_that_resolves_to_this_machine_is_refused_for_fal(monkeypatch):
    async def resolve(host, port):
        return ["127.0.0.1"]

    monkeypatch.setattr(preflight, "_resolve", resolve)
    with pytest.raises(BackendConfigError, match=r"resolves to this machine \(127.0.0.1\)"):
        asyncio.run(check_reachable("queue.fal.example:443", allow_loopback=False))


def test_is_loopback_address_needs_no_port():
    assert is_loopback_address("127.0.0.9") and not is_loopback_address("queue.fal.run")


# -- item 16: pre-flight ---------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def untrusted_tls_server():
    """A TLS server on loopback whose certificate no bundle of ours trusts."""
    cert = trustme.CA().issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    thread = LoopThread("untrusted-tls").start()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def serve() -> asyncio.AbstractServer:
        return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)

    server = thread.call(serve())
    port = server.sockets[0].getsockname()[1]

    async def close() -> None:
        server.close()

    try:
        yield f"127.0.0.1:{port}"
    finally:
        thread.stop(close())


def _emulator_env(host_port: str) -> dict[str, str | None]:
    return {"KLING_LAB_EMULATOR": host_port, "FAL_QUEUE_RUN_HOST": host_port, "FAL_RUN_HOST": host_port}


def test_an_unreachable_backend_is_one_line_exit_2_nothing_written(emulator, tmp_path):
    host = f"127.0.0.1:{_closed_port()}"
    store = tmp_path / "store"
    proc = cli("run", str(sweep_file(tmp_path, [0.2, 0.8])), "--store", str(store), env=_emulator_env(host))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot connect to" in lines[0] and "nothing was submitted" in lines[0], lines
    assert not store.exists()


def test_an_untrusted_certificate_is_one_line_exit_2_nothing_written(untrusted_tls_server, emulator, tmp_path):
    store = tmp_path / "store"
    proc = cli(
        "run", str(sweep_file(tmp_path, [0.2, 0.8])), "--store", str(store), env=_emulator_env(untrusted_tls_server)
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "certificate" in lines[0] and "not trusted" in lines[0], lines
    assert not store.exists()


def test_resume_runs_the_pre_flight_too(emulator, tmp_path):
    store = tmp_path / "store"
    sweep = Sweep.grid("r", prompt="a", cfg_scale=[0.5])
    runner = make_runner("emulator", store, progress=False)
    journal = Journal(runner.store.journal_dir)
    journal.submitted(
        request_id="req-1",
        fingerprint=sweep.items[0].fingerprint,
        backend="emulator",
        endpoint=sweep.items[0].request.endpoint_id,
        input=sweep.items[0].request.arguments(),
        submitted_at=utcnow(),
        sweep={"repeat": 0},
    )
    journal.close()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process that no longer runs: its journal is for a resume to collect
    stamp, _, rest = journal.path.name.split("-", 2)
    journal.path.rename(journal.path.with_name(f"{stamp}-{gone.pid}-{rest}"))
    proc = cli("resume", "--store", str(store), env=_emulator_env(f"127.0.0.1:{_closed_port()}"))
    assert proc.returncode == 2 and "cannot connect to" in proc.stderr, proc.stderr
    assert not (store / "runs").exists()


def test_the_pre_flight_passes_for_the_emulator(emulator):
    asyncio.run(check_reachable(emulator.host_port, allow_loopback=True))


def test_a_certificate_error_is_not_transient(untrusted_tls_server):
    with pytest.raises(httpx.ConnectError) as info:
        httpx.get(f"https://{untrusted_tls_server}/")
    error = translate_error(info.value)
    assert error.transient is False and error.error_type == "tls_certificate"
