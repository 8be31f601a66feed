"""The emulator over loopback HTTPS, driven by the real fal_client and by plain httpx."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import shlex
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import av
import fal_client
import httpx
import numpy as np
import pytest
from fal_client.client import AsyncRequestHandle, Completed, FalClientHTTPError, InProgress, Queued
from pydantic import BaseModel, ConfigDict, ValidationError

from kling_lab.backends.emulator import (
    EMULATOR_ENV,
    EmulatorConfig,
    EmulatorServer,
    ensure_emulator,
    external_emulator,
    render_placeholder,
)
from kling_lab.backends.emulator.endpoints import ModelEndpoint, Workshop
from kling_lab.backends.emulator.kling import KlingTextToVideo
from kling_lab.backends.emulator.queue import Job, JobFailed, job_key
from kling_lab.backends.emulator.render import caption_lines, output_size
from kling_lab.errors import BackendConfigError
from kling_lab.request import ENDPOINT, KlingRequest

AUTH = {"Authorization": "Key test-key"}
REQUESTS = "/fal-ai/kling-video/requests"


# -- helpers -----------------------------------------------------------------------------------
def client() -> fal_client.AsyncClient:
    return fal_client.AsyncClient(key="test-key")


def run(scenario: Callable[[fal_client.AsyncClient], Awaitable[Any]]) -> Any:
    """Run ``scenario(client)`` on a fresh event loop (no pytest-asyncio)."""

    async def main() -> Any:
        c = client()
        try:
            return await scenario(c)
        finally:  # fal_client.AsyncClient has no close(); its httpx client would leak sockets
            await (await c._client).aclose()

    return asyncio.run(main())


async def poll_until(handle: AsyncRequestHandle, kind: type, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        status = await handle.status(with_logs=True)
        if isinstance(status, kind):
            return status
        assert time.monotonic() < deadline, f"{handle.request_id} is still {status}"
        await asyncio.sleep(0.02)


def reconfigure(server: EmulatorServer, **changes: Any) -> None:
    """Reset the server (jobs, counters, fault ordinals) with ``changes`` over its config."""
    server.reset(EmulatorConfig.model_validate({**server.config.model_dump(), **changes}))


def call(server: EmulatorServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One HTTP call, no retries (trust comes from SSL_CERT_FILE, set by ensure_emulator)."""
    return httpx.request(method, server.base_url + path, **kwargs)


def probe(path: Path) -> tuple[str, int, int, int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        duration = float(container.duration / av.time_base)
        return stream.codec_context.name, stream.width, stream.height, frames, duration


def motion(path: Path) -> float:
    """Mean absolute difference between consecutive luma frames."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="gray").astype(np.float32) for f in container.decode(video=0)]
    return float(np.mean([np.abs(b - a).mean() for a, b in itertools.pairwise(frames)]))


# -- the queue protocol through fal_client -----------------------------------------------------
def test_jobs_queue_run_and_complete(emulator: EmulatorServer) -> None:
    emulator.configure(concurrency=1, queue_delay_s=3600.0, service_time_s=1.0)

    async def scenario(c: fal_client.AsyncClient) -> None:
        handles = [await c.submit(ENDPOINT, {"prompt": f"a lighthouse {i}"}) for i in range(3)]
        assert [await h.status(with_logs=True) for h in handles] == [Queued(0), Queued(1), Queued(2)]
        emulator.configure(queue_delay_s=0.0)  # let them go, one at a time (concurrency 1)
        running = await poll_until(handles[0], InProgress)
        assert "kling_lab emulator" in running.logs[0]["message"]
        assert {"message", "level", "source", "timestamp"} <= set(running.logs[0])
        assert await handles[1].status() == Queued(position=0)
        done = await poll_until(handles[0], Completed)
        assert done.error is None and done.error_type is None
        assert done.metrics["inference_time"] >= 1.0  # the service time is a floor
        video = (await handles[2].get())["video"]
        assert video["content_type"] == "video/mp4" and video["file_size"] > 1000
        assert video["file_name"] == f"emulator-{handles[2].request_id}.mp4"
        again = await c.get_handle(ENDPOINT, handles[2].request_id)  # re-attach by id
        assert isinstance(await again.status(), Completed)

    run(scenario)
    stats = emulator.stats()
    assert stats["submissions"] == 3 and stats["jobs"]["ok"] == 3 and stats["billed_usd"] == pytest.approx(4.2)


def test_videos_are_real_h264_of_the_requested_size_and_length(emulator: EmulatorServer, tmp_path: Path) -> None:
    combos = [(aspect, duration) for aspect in ("16:9", "9:16", "1:1") for duration in ("5", "10")]

    async def scenario(c: fal_client.AsyncClient) -> list[tuple[dict[str, Any], httpx.Response]]:
        handles = [await c.submit(ENDPOINT, {"prompt": "probe", "aspect_ratio": a, "duration": d}) for a, d in combos]
        results = await asyncio.gather(*(h.get() for h in handles))
        async with httpx.AsyncClient() as http:
            return [(r["video"], await http.get(r["video"]["url"])) for r in results]

    for (aspect, duration), (video, response) in zip(combos, run(scenario)):
        assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
        assert int(response.headers["content-length"]) == video["file_size"] == len(response.content)
        path = tmp_path / video["file_name"]
        path.write_bytes(response.content)
        codec, width, height, frames, seconds = probe(path)
        assert (codec, width, height) == ("h264", *output_size(aspect, 0.25))
        assert frames == int(duration) * 24 and seconds == pytest.approx(int(duration), abs=0.1)
    assert sum(emulator.stats()["downloads"].values()) == len(combos)


def test_downloads_support_range_requests(emulator: EmulatorServer) -> None:
    video = run(lambda c: _submit_and_get(c, {"prompt": "range"}))["video"]
    response = httpx.get(video["url"], headers={"Range": "bytes=0-99"})
    assert response.status_code == 206 and len(response.content) == 100
    assert response.headers["x-kling-lab-emulator"] == "1"


async def _submit_and_get(c: fal_client.AsyncClient, arguments: dict[str, Any]) -> dict[str, Any]:
    return await (await c.submit(ENDPOINT, arguments)).get()


@pytest.mark.parametrize("bad, field", [({"cfg_scale": 1.5}, "cfg_scale"), ({"aspect_ratio": "4:3"}, "aspect_ratio")])
def test_invalid_input_is_a_422_and_creates_nothing(emulator: EmulatorServer, bad: dict, field: str) -> None:
    async def scenario(c: fal_client.AsyncClient) -> FalClientHTTPError:
        with pytest.raises(FalClientHTTPError) as caught:
            await c.submit(ENDPOINT, {"prompt": "a cat", **bad})
        return caught.value

    error = run(scenario)
    assert error.status_code == 422
    [detail] = error.response.json()["detail"]
    assert detail["loc"] == ["body", field] and detail["msg"] and detail["type"]
    stats = emulator.stats()
    assert stats["submissions"] == stats["submit_calls"] == 0 and sum(stats["jobs"].values()) == 0


def test_calls_without_a_key_are_401(emulator: EmulatorServer) -> None:
    assert call(emulator, "POST", f"/{ENDPOINT}", json={"prompt": "a cat"}).status_code == 401
    response = call(emulator, "GET", f"{REQUESTS}/some-id/status")
    assert response.status_code == 401 and "detail" in response.json()
    assert response.headers["x-kling-lab-emulator"] == "1"
    assert emulator.stats()["submissions"] == 0


def test_only_the_accepted_keys_pass_when_the_config_names_them(emulator: EmulatorServer) -> None:
    emulator.configure(accepted_key_sha256=[hashlib.sha256(b"Key test-key").hexdigest()])
    assert call(emulator, "POST", f"/{ENDPOINT}", json={"prompt": "a cat"}, headers=AUTH).status_code == 200
    revoked = {"Authorization": "Key revoked-key"}
    assert call(emulator, "POST", f"/{ENDPOINT}", json={"prompt": "a cat"}, headers=revoked).status_code == 401
    assert call(emulator, "GET", f"{REQUESTS}/some-id/status", headers=revoked).status_code == 401
    assert emulator.stats()["submissions"] == 1


def test_unknown_paths_and_ids_are_404(emulator: EmulatorServer) -> None:
    response = call(emulator, "POST", "/fal-ai/some-other-model", json={}, headers=AUTH)
    assert response.status_code == 404 and "detail" in response.json()
    assert call(emulator, "GET", f"{REQUESTS}/nope/status", headers=AUTH).status_code == 404
    assert call(emulator, "GET", f"{REQUESTS}/nope", headers=AUTH).status_code == 404
    response = call(emulator, "PUT", f"{REQUESTS}/nope/cancel", headers=AUTH)
    assert response.status_code == 404 and response.json() == {"status": "NOT_FOUND"}


def test_result_is_400_while_running_and_410_once_expired(emulator: EmulatorServer) -> None:
    emulator.configure(queue_delay_s=3600.0, result_ttl_s=0.2)  # queued until the test lets it go
    submitted = call(emulator, "POST", f"/{ENDPOINT}", json={"prompt": "a cat"}, headers=AUTH).json()
    path = f"{REQUESTS}/{submitted['request_id']}"
    early = call(emulator, "GET", path, headers=AUTH)
    assert early.status_code == 400 and early.json() == {"detail": "Request is still in progress"}
    assert early.headers["x-fal-request-id"] == submitted["request_id"]
    emulator.configure(queue_delay_s=0.0)
    deadline = time.monotonic() + 10
    while call(emulator, "GET", f"{path}/status", headers=AUTH).json()["status"] != "COMPLETED":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)  # longer than result_ttl_s: the result has expired
    late = call(emulator, "GET", path, headers=AUTH)
    assert late.status_code == 410 and late.json() == {"detail": "Request result expired"}


# -- cancel ------------------------------------------------------------------------------------
def test_cancelling_a_queued_job_means_it_never_runs(emulator: EmulatorServer) -> None:
    emulator.configure(concurrency=1, queue_delay_s=3600.0, service_time_s=0.1)

    async def scenario(c: fal_client.AsyncClient) -> None:
        first = await c.submit(ENDPOINT, {"prompt": "first"})
        second = await c.submit(ENDPOINT, {"prompt": "second"})
        await second.cancel()  # still queued: the queue delay holds both until the test lets them go
        emulator.configure(queue_delay_s=0.0)
        await first.get()
        status = await second.status(with_logs=True)
        assert isinstance(status, Completed) and status.metrics == {}
        assert (status.error, status.error_type) == ("Request was cancelled", "request_cancelled")
        with pytest.raises(FalClientHTTPError) as caught:
            await second.get()
        assert caught.value.status_code == 400 and caught.value.error_type == "request_cancelled"
        with pytest.raises(FalClientHTTPError) as caught:
            await first.cancel()
        assert caught.value.status_code == 400 and caught.value.response.json() == {"status": "ALREADY_COMPLETED"}

    run(scenario)
    stats = emulator.stats()
    assert stats["cancels"] == 1 and stats["jobs"]["cancelled"] == 1 and stats["jobs"]["ok"] == 1
    assert stats["billed_usd"] == pytest.approx(1.4)


def test_cancelling_a_running_job_stops_it(emulator: EmulatorServer) -> None:
    emulator.configure(queue_delay_s=0.0, service_time_s=3600.0)

    async def scenario(c: fal_client.AsyncClient) -> Completed:
        handle = await c.submit(ENDPOINT, {"prompt": "long"})
        await poll_until(handle, InProgress)
        await handle.cancel()
        return await handle.status()

    status = run(scenario)
    assert status.error_type == "request_cancelled" and status.metrics["inference_time"] < 3600.0
    assert emulator.stats()["jobs"]["cancelled"] == 1 and emulator.stats()["billed_usd"] == 0


# -- content policy ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "prompt, changes",
    [("a [BLOCKED] scene", {}), ("a calm lake", {"rate_content_policy": 1.0})],
    ids=["keyword", "rate"],
)
def test_content_policy_failures_complete_with_an_error(emulator: EmulatorServer, prompt: str, changes: dict) -> None:
    emulator.configure(**changes)

    async def scenario(c: fal_client.AsyncClient) -> tuple[Completed, FalClientHTTPError]:
        handle = await c.submit(ENDPOINT, {"prompt": prompt})
        status = await poll_until(handle, Completed)
        with pytest.raises(FalClientHTTPError) as caught:
            await handle.get()
        return status, caught.value

    status, error = run(scenario)
    assert status.error and status.error_type == "content_policy_violation"
    assert error.status_code == 422 and error.error_type == "content_policy_violation"
    [detail] = error.response.json()["detail"]
    assert detail["loc"] == ["body", "prompt"] and detail["type"] == "content_policy_violation"
    stats = emulator.stats()
    assert stats["jobs"]["failed"] == 1 and stats["billed_usd"] == 0 and stats["faults"] == {"content_policy": 1}


# -- infrastructure faults ---------------------------------------------------------------------
def _status_outcomes(server: EmulatorServer, seed: int) -> list[str]:
    """What 40 raw status calls on one job see under ``seed`` (faults on status calls only)."""
    reconfigure(server, seed=seed, rate_429=0.15, rate_500=0.15, rate_503=0.1, rate_drop=0.1, fault_calls={"status"})
    request_id = call(server, "POST", f"/{ENDPOINT}", json={"prompt": "faults"}, headers=AUTH).json()["request_id"]
    outcomes = []
    with httpx.Client(headers=AUTH) as http:
        for _ in range(40):
            try:
                outcomes.append(str(http.get(f"{server.base_url}{REQUESTS}/{request_id}/status").status_code))
            except httpx.RemoteProtocolError:
                outcomes.append("drop")
    return outcomes


def test_faults_are_deterministic_under_the_seed(emulator: EmulatorServer) -> None:
    first, again, other = (_status_outcomes(emulator, seed) for seed in (11, 11, 12))
    assert first == again and first != other
    assert {"200", "429", "500", "503", "drop"} <= set(first)
    assert emulator.stats()["faults"]["drop"] == other.count("drop")


def test_429_carries_retry_after_and_has_no_effect(emulator: EmulatorServer) -> None:
    emulator.configure(rate_429=1.0, fault_calls={"submit"})
    response = call(emulator, "POST", f"/{ENDPOINT}", json={"prompt": "a cat"}, headers=AUTH)
    # fal's own Retry-After is a whole second or more: the emulator's default is as realistic (issue 12 item 9)
    assert response.status_code == 429 and float(response.headers["retry-after"]) == pytest.approx(1.0)
    assert response.headers["x-fal-error-type"] == response.json()["error_type"]
    assert emulator.stats()["submissions"] == 0 and emulator.stats()["faults"] == {"429": 1}


def test_fal_client_absorbs_429_and_drops_but_not_500_or_503(emulator: EmulatorServer) -> None:
    reconfigure(emulator, seed=3, rate_429=0.25, rate_drop=0.25, fault_calls={"submit", "status", "result"})
    assert "video" in run(lambda c: _submit_and_get(c, {"prompt": "retry me"}))
    stats = emulator.stats()
    assert stats["submissions"] == 1 and stats["faults"]["429"] > 0 and stats["faults"]["drop"] > 0

    for code, calls in (("500", {"status"}), ("503", {"submit"})):
        rates = {"rate_429": 0.0, "rate_drop": 0.0, "rate_500": 0.0, "rate_503": 0.0, f"rate_{code}": 1.0}
        reconfigure(emulator, **rates, fault_calls=calls)
        with pytest.raises(FalClientHTTPError) as caught:
            run(lambda c: _submit_and_get(c, {"prompt": "fail me"}))
        assert caught.value.status_code == int(code) and emulator.stats()["faults"] == {code: 1}


def test_a_lost_submit_response_makes_fal_client_create_a_duplicate(emulator: EmulatorServer) -> None:
    arguments = {"prompt": "lost response"}
    key = KlingTextToVideo().input_hash(KlingRequest(**arguments))
    seed = next(
        s
        for s in range(1000)
        if (cfg := EmulatorConfig(seed=s)).chance(0.5, job_key(key, 0), "lost_submit")
        and not cfg.chance(0.5, job_key(key, 1), "lost_submit")
    )
    reconfigure(emulator, seed=seed, rate_lost_submit=0.5)
    run(lambda c: c.submit(ENDPOINT, arguments))
    stats = emulator.stats()
    assert stats["submissions"] == 2 and stats["submissions_by_input"] == {key: 2}
    assert stats["faults"] == {"lost_submit": 1}


def test_a_held_submit_has_its_job_at_fal_before_the_client_has_an_id(emulator: EmulatorServer) -> None:
    emulator.configure(hold_submit_responses=True, queue_delay_s=30.0)

    async def scenario(c: fal_client.AsyncClient) -> str:
        submit = asyncio.ensure_future(c.submit(ENDPOINT, {"prompt": "held answer"}))
        while emulator.stats()["submits_held"] < 1:
            await asyncio.sleep(0.01)
        assert not submit.done() and emulator.stats()["jobs"]["queued"] == 1
        emulator.configure(hold_submit_responses=False)
        return (await submit).request_id

    request_id = run(scenario)
    stats = emulator.stats()
    assert request_id and stats["submissions"] == 1 and stats["submits_held"] == 0


def test_truncated_video_announces_more_bytes_than_it_sends(emulator: EmulatorServer) -> None:
    video = run(lambda c: _submit_and_get(c, {"prompt": "cut short"}))["video"]
    emulator.configure(rate_truncated_video=1.0)
    received = 0
    with httpx.stream("GET", video["url"]) as response:
        announced = int(response.headers["content-length"])
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_raw():
                received += len(chunk)
    assert announced == video["file_size"] and 0 < received < announced
    assert emulator.stats()["faults"] == {"truncated_video": 1}


# -- counters, admin routes, process-wide server -----------------------------------------------
def test_counts_submissions_by_input_and_fingerprint(emulator: EmulatorServer) -> None:
    arguments = {"prompt": "count me", "cfg_scale": 0.3}

    async def scenario(c: fal_client.AsyncClient) -> None:
        for headers in ({"X-Kling-Lab-Fingerprint": "fp-1"}, {"X-Kling-Lab-Fingerprint": "fp-1"}, {}):
            await c.submit(ENDPOINT, arguments, headers=headers)
        await c.submit(ENDPOINT, {"prompt": "another"}, headers={"X-Kling-Lab-Fingerprint": "fp-2"})

    run(scenario)
    stats = emulator.stats()
    assert stats["submissions"] == 4
    assert stats["submissions_by_input"][KlingTextToVideo().input_hash(KlingRequest(**arguments))] == 3
    assert stats["submissions_by_fingerprint"] == {"fp-1": 2, "fp-2": 1}
    stats["submissions_by_fingerprint"]["fp-1"] = 99  # a copy, not the live counters
    assert emulator.stats()["submissions_by_fingerprint"]["fp-1"] == 2


def test_admin_routes_read_and_steer_the_server(emulator: EmulatorServer) -> None:
    call(emulator, "POST", f"/{ENDPOINT}", json={"prompt": "a cat"}, headers=AUTH)
    assert call(emulator, "GET", "/_emulator/stats").json()["submissions"] == 1
    assert call(emulator, "POST", "/_emulator/config", json={"rate_429": 0.5}).json()["rate_429"] == 0.5
    assert emulator.config.rate_429 == 0.5
    bad = call(emulator, "POST", "/_emulator/config", json={"rate_429": 2})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "rate_429"]
    assert call(emulator, "POST", "/_emulator/reset").json()["submissions"] == 0
    assert emulator.config.rate_429 == 0.5  # a reset without a body keeps the config
    call(emulator, "POST", "/_emulator/reset", json={"render_scale": 0.25})
    assert emulator.config.rate_429 == 0.0 and emulator.config.render_scale == 0.25
    with pytest.raises(ValidationError):
        emulator.configure(concurrency=0)


def test_authorization_headers_are_counted_as_digests_never_kept(emulator: EmulatorServer) -> None:
    call(emulator, "POST", f"/{ENDPOINT}", json={"prompt": "a cat"}, headers={"Authorization": "Key one"})
    for _ in range(2):
        call(emulator, "GET", f"{REQUESTS}/nope/status", headers={"Authorization": "Key two"})
    assert call(emulator, "GET", f"{REQUESTS}/nope", headers={"Authorization": "Bearer x"}).status_code == 401
    call(emulator, "GET", "/_emulator/config")  # no header: not counted
    response = call(emulator, "GET", "/_emulator/stats")
    digests = sorted(hashlib.sha256(value.encode()).hexdigest() for value in ("Key one", "Key two", "Bearer x"))
    assert response.json()["authorization"] == {"requests": 4, "sha256": digests}
    assert "Key one" not in response.text and "Bearer" not in response.text
    assert emulator.stats()["authorization"] == response.json()["authorization"]


class EchoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


class Echo(ModelEndpoint[EchoInput]):
    """A second model endpoint: what a registry entry adds to the emulator."""

    endpoint_id = "fal-ai/echo/v1/loud"
    input_model = EchoInput
    notes = ("echo endpoint",)

    def cost_usd(self, value: EchoInput) -> float:
        return 0.01

    async def run(self, job: Job, shop: Workshop) -> str:
        if job.input.text == "fail":
            raise JobFailed("cannot echo that", "downstream_service_error")
        return job.input.text.upper()

    def output(self, job: Job, file_url: Callable[[str], str]) -> dict[str, Any]:
        return {"text": job.result}


def test_another_endpoint_is_one_subclass_more(emulator: EmulatorServer) -> None:
    with EmulatorServer(EmulatorConfig(queue_delay_s=0, service_time_s=0), endpoints=[Echo()]) as server:
        with httpx.Client(base_url=server.base_url, headers=AUTH) as http:
            assert http.post("/fal-ai/echo/v1/loud", json={"txt": "hi"}).json()["detail"][0]["loc"] == ["body", "text"]
            submitted = http.post("/fal-ai/echo/v1/loud", json={"text": "hi"}).json()
            assert submitted["status_url"] == f"{server.base_url}/fal-ai/echo/requests/{submitted['request_id']}/status"
            deadline = time.monotonic() + 10
            while (status := http.get(submitted["status_url"], params={"logs": 1}).json())["status"] != "COMPLETED":
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert status["logs"][0]["message"] == "echo endpoint"
            assert http.get(submitted["response_url"]).json() == {"text": "HI"}
            failed = http.post("/fal-ai/echo/v1/loud", json={"text": "fail"}).json()["request_id"]
            while http.get(f"/fal-ai/echo/requests/{failed}/status").json()["status"] != "COMPLETED":
                assert time.monotonic() < deadline
                time.sleep(0.01)
            response = http.get(f"/fal-ai/echo/v1/loud/requests/{failed}")
            assert response.status_code == 500 and response.json()["error_type"] == "downstream_service_error"
            assert http.post(f"/{ENDPOINT}", json={"prompt": "a cat"}).status_code == 404  # only what it serves
        stats = server.stats()
        assert stats["submissions"] == 2 and stats["billed_usd"] == pytest.approx(0.01)
    assert emulator.stats()["submissions"] == 0  # a server of its own


def test_ensure_emulator_is_process_wide(emulator_session: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ensure_emulator() is emulator_session
    host_port = emulator_session.host_port
    assert os.environ["FAL_QUEUE_RUN_HOST"] == os.environ[EMULATOR_ENV] == host_port
    assert f"https://{host_port}/" == fal_client.client.QUEUE_URL_FORMAT
    assert external_emulator() is None
    monkeypatch.setenv(EMULATOR_ENV, "127.0.0.1:1")
    assert external_emulator() == "127.0.0.1:1"
    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", "https://queue.fal.run/")
    with pytest.raises(BackendConfigError, match="imported before the emulator"):
        ensure_emulator()


def test_serve_forever_prints_the_environment_and_serves() -> None:
    code = "from kling_lab.backends.emulator import EmulatorServer; EmulatorServer().serve_forever()"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env) as proc:
        _check_foreground_emulator(proc)


def _check_foreground_emulator(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    try:
        assert "placeholder" in proc.stdout.readline()
        words = shlex.split(proc.stdout.readline())
        assert words[0] == "export"
        exported = dict(word.split("=", 1) for word in words[1:])
        host_port = exported["FAL_QUEUE_RUN_HOST"]
        assert exported["FAL_RUN_HOST"] == exported[EMULATOR_ENV] == host_port
        trust = ssl.create_default_context(cafile=exported["SSL_CERT_FILE"])
        assert httpx.get(f"https://{host_port}/_emulator/stats", verify=trust).json()["submissions"] == 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0  # a bound against a hang, not a speed test
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- the placeholder video ---------------------------------------------------------------------
def _render(tmp_path: Path, name: str, **changes: Any) -> Path:
    params: dict[str, Any] = dict(
        prompt="a dancer on a rooftop",
        negative_prompt="blur",
        cfg_scale=0.5,
        aspect_ratio="16:9",
        duration_s=5,
        width=320,
        height=180,
        fps=24,
        variation_seed=1,
        blind=False,  # the parameter panel these motion calibrations were measured with
    )
    path = tmp_path / f"{name}.mp4"
    render_placeholder(path, **{**params, **changes})
    return path


def test_cfg_scale_changes_motion_and_negative_prompt_does_not(tmp_path: Path) -> None:
    low, mid, high = (motion(_render(tmp_path, f"cfg{c}", cfg_scale=c)) for c in (0.1, 0.5, 0.9))
    assert low * 1.5 < mid < high / 1.2
    plain = motion(_render(tmp_path, "neg-a", cfg_scale=0.5, negative_prompt="blur"))
    other = motion(_render(tmp_path, "neg-b", cfg_scale=0.5, negative_prompt="text, watermark, extra limbs, ugly"))
    assert other == pytest.approx(plain, rel=0.03)
    repeat = motion(_render(tmp_path, "repeat", cfg_scale=0.5, variation_seed=2))
    assert repeat == pytest.approx(plain, rel=0.15)


def test_motion_words_in_the_negative_prompt_slow_the_drift_one_percent_each(tmp_path: Path) -> None:
    from kling_lab.backends.emulator.render import motion_factor

    assert motion_factor("blur, distort, and low quality") == 1.0
    assert motion_factor("Fast motion, SHAKY camera") == pytest.approx(0.97)
    assert motion_factor("fast " * 40) == pytest.approx(0.90)  # at most 10 words count
    plain = motion(_render(tmp_path, "calm-a", negative_prompt="blur"))
    slowed = motion(_render(tmp_path, "calm-b", negative_prompt="fast motion, shaky, jitter, movement"))
    assert slowed == pytest.approx(plain * 0.95, rel=0.01)  # same seed: only the 5 % slowdown differs


def test_placeholder_has_exact_frame_count_and_even_size(tmp_path: Path) -> None:
    codec, width, height, frames, seconds = probe(
        _render(tmp_path, "tall", aspect_ratio="9:16", width=180, height=320, duration_s=10)
    )
    assert (codec, width, height, frames) == ("h264", 180, 320, 240) and seconds == pytest.approx(10, abs=0.1)
    assert output_size("16:9", 0.25) == (320, 180) and output_size("1:1", 1.0) == (720, 720)
    with pytest.raises(ValueError):
        _render(tmp_path, "odd", width=321)


def _frame_bytes(path: Path) -> list[bytes]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="gray").tobytes() for f in container.decode(video=0)]


def test_blind_placeholders_do_not_show_the_arm(tmp_path: Path) -> None:
    """Issue 15 item 10: the burned-in text printed the negative prompt, so A/B votes on it were not blind.
    Blind (the default) burns in a neutral code: clips differing only in negative_prompt look identical."""
    a = _frame_bytes(_render(tmp_path, "blind-a", negative_prompt="blur", blind=True))
    b = _frame_bytes(_render(tmp_path, "blind-b", negative_prompt="text, watermark, extra limbs", blind=True))
    assert a == b
    shown_a = _frame_bytes(_render(tmp_path, "shown-a", negative_prompt="blur", blind=False))
    shown_b = _frame_bytes(_render(tmp_path, "shown-b", negative_prompt="text, watermark, extra limbs", blind=False))
    assert shown_a != shown_b  # the same comparison can fail: the parameters are printed when asked for
    assert caption_lines(**_CAPTION, blind=True) == ["clip 0000-0000-0001  ·  5 s  ·  320x180"]
    assert any("negative: blur" in line for line in caption_lines(**_CAPTION, blind=False))
    assert EmulatorConfig().blind is True


_CAPTION: dict[str, Any] = dict(
    prompt="a fox",
    negative_prompt="blur",
    cfg_scale=0.5,
    aspect_ratio="16:9",
    duration_s=5,
    width=320,
    height=180,
    variation_seed=1,
)
