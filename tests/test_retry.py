"""The runner's one retry policy: transient errors retried with backoff, permanent ones once, attempts capped."""

from __future__ import annotations

import asyncio
import random

import pytest

from kling_lab.errors import BackendError, DownloadError
from kling_lab.runner.options import RunOptions
from kling_lab.runner.retry import Backoff, RetryPolicy, retry


class Flaky:
    """A call that raises the given errors in turn, then answers "done"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def attempt_run(call: Flaky, policy: RetryPolicy) -> tuple[object, list[int], list[float]]:
    """Run ``retry`` recording attempt numbers and the delays it asked to sleep (no real waiting)."""
    attempts: list[int] = []
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    async def main() -> object:
        try:
            return await retry(call, policy, rng=random.Random(0), on_attempt=attempts.append, sleep=sleep)
        except Exception as exc:  # returned for the test to inspect
            return exc

    return asyncio.run(main()), attempts, delays


def transient(status: int = 503, retry_after_s: float | None = None) -> BackendError:
    return BackendError(f"HTTP {status}", status_code=status, transient=True, retry_after_s=retry_after_s)


def test_transient_errors_are_retried_until_success():
    call = Flaky(transient(), transient(429))
    outcome, attempts, delays = attempt_run(call, RetryPolicy(6, Backoff(1.0, 60.0), (BackendError,)))
    assert outcome == "done" and call.calls == 3
    assert attempts == [1, 2, 3]
    assert len(delays) == 2 and 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0  # base·2^(n-1), jittered


@pytest.mark.parametrize("status,error_type", [(401, None), (422, "content_policy_violation")])
def test_permanent_errors_get_exactly_one_attempt(status, error_type):
    error = BackendError("no", status_code=status, error_type=error_type, transient=False)
    call = Flaky(error)
    outcome, attempts, delays = attempt_run(call, RetryPolicy(6, Backoff(), (BackendError,)))
    assert outcome is error and call.calls == 1 and attempts == [1] and delays == []


def test_attempts_are_capped_and_the_last_error_is_raised():
    errors = [transient() for _ in range(10)]
    call = Flaky(*errors)
    outcome, attempts, delays = attempt_run(call, RetryPolicy(4, Backoff(), (BackendError,)))
    assert outcome is errors[3] and call.calls == 4
    assert attempts == [1, 2, 3, 4] and len(delays) == 3


def test_errors_outside_the_policy_are_not_retried():
    wrong_kind = DownloadError("reset", transient=True)
    call = Flaky(wrong_kind)
    outcome, _, delays = attempt_run(call, RetryPolicy(6, Backoff(), (BackendError,)))
    assert outcome is wrong_kind and call.calls == 1 and delays == []


def test_retry_after_is_honoured():
    assert Backoff(1.0, 60.0).delay(1, retry_after_s=7.5, rng=random.Random(0)) == 7.5
    assert Backoff(1.0, 60.0).delay(1, retry_after_s=10_000) == 300.0  # capped at 5·cap
    assert Backoff(1.0, 60.0).delay(6, retry_after_s=0.1, rng=random.Random(0)) >= 16.0  # never shorter than backoff
    _, _, delays = attempt_run(Flaky(transient(429, retry_after_s=12.0)), RetryPolicy(3, Backoff(), (BackendError,)))
    assert delays == [12.0]


def test_max_step_caps_the_backoff_exponent():
    policy = RetryPolicy(31, Backoff(1.0, 60.0), (BackendError,), max_step=6)
    rng = random.Random(0)
    assert all(policy.delay(n, transient(), rng) <= 32.0 for n in range(6, 31))
    assert RetryPolicy(31, Backoff(1.0, 60.0)).delay(8, transient(), random.Random(1)) >= 30.0


def test_run_options_policies_keep_the_runner_semantics():
    opts = RunOptions(max_submit_attempts=5, max_poll_errors=30, download_attempts=3)
    assert (opts.submit_policy.max_attempts, opts.submit_policy.retry_on) == (5, (BackendError,))
    assert (opts.poll_policy.max_attempts, opts.poll_policy.max_step) == (31, 6)  # 30 errors in a row are retried
    assert (opts.download_policy.max_attempts, opts.download_policy.retry_on) == (3, (DownloadError,))
    assert RunOptions(max_poll_errors=0).poll_policy.max_attempts == 1


@pytest.mark.parametrize(
    "knob,value",
    [("max_submit_attempts", 0), ("download_attempts", 0), ("max_poll_errors", -1), ("concurrency", True)],
)
def test_run_options_refuse_bad_attempt_counts(knob, value):
    with pytest.raises(ValueError, match=knob):
        RunOptions(**{knob: value})


def test_the_backoff_schedule_is_pinned():
    """base·2^(n-1) capped at cap_s, times a jitter in [½, 1] drawn from the rng; Retry-After is a floor (≤ 5·cap)."""
    backoff = Backoff(base_s=1.0, cap_s=8.0)
    rng, twin = random.Random(42), random.Random(42)
    expected = [min(8.0, 2.0 ** (n - 1)) * (0.5 + 0.5 * twin.random()) for n in range(1, 7)]
    assert [backoff.delay(n, rng=rng) for n in range(1, 7)] == expected
    assert [round(d, 6) for d in expected] == [0.819713, 1.025011, 2.550059, 4.892843, 6.945885, 6.706798]
    assert backoff.delay(1, retry_after_s=3.0, rng=random.Random(42)) == 3.0  # Retry-After beyond the backoff
    assert backoff.delay(5, retry_after_s=3.0, rng=random.Random(42)) == backoff.delay(5, rng=random.Random(42))
    assert backoff.delay(1, retry_after_s=1e6) == 40.0  # capped at 5·cap
    assert backoff.delay(1, retry_after_s=0.0, rng=random.Random(42)) == backoff.delay(1, rng=random.Random(42))


@pytest.mark.parametrize("case", ["401", "422"])
def test_a_permanent_error_at_submit_gets_exactly_one_attempt_through_the_runner(emulator, tmp_path, case):
    import dataclasses
    import hashlib
    import json

    from kling_lab.runner.api import run
    from kling_lab.store.run_store import load_runs
    from kling_lab.sweep import Sweep, SweepItem

    request = Sweep.grid("permanent", prompt="a kite").items[0].request
    if case == "401":  # fal no longer accepts the key (revoked)
        emulator.configure(accepted_key_sha256=[hashlib.sha256(b"Key some-other-key").hexdigest()])
    else:  # fal's own validation refuses what ours let through
        request = dataclasses.replace(request, input=request.input.model_copy(update={"cfg_scale": 7.0}))
    sweep = Sweep("permanent", (SweepItem(request),))
    journaled: list[dict] = []

    class ReadTheJournal:  # at the row's event, before the journal is pruned at the end of the run
        def on_event(self, event) -> None:
            if event.terminal:
                files = (tmp_path / "journal").glob("*.jsonl")
                journaled.extend(json.loads(line) for f in files for line in f.read_text().splitlines())

    result = run(
        sweep,
        store=tmp_path,
        progress=False,
        max_submit_attempts=6,
        backoff=Backoff(0.001, 0.01),
        observers=[ReadTheJournal()],
    )
    row = load_runs(tmp_path).iloc[0]
    assert row["status"] == "failed" and row["cost_usd"] == 0 and row["attempts"] == 1
    if case == "401":
        assert row["error_type"] == "unauthorized"
    else:
        assert row["error"].startswith("cfg_scale:"), row["error"]
    assert emulator.stats()["authorization"]["requests"] == 1, "one POST reached fal"
    assert emulator.stats()["submissions"] == 0 and result.submitted == 0
    closed = [e["reason"] for e in journaled if e["event"] == "intent_closed"]
    assert closed == [row["error_type"]], "the journal says why the intent created no job"


def test_the_default_backoff_is_one_second_doubling_to_a_minute():
    import dataclasses

    backoff = Backoff()
    assert (backoff.base_s, backoff.cap_s) == (1.0, 60.0)
    for attempt, raw in ((1, 1.0), (2, 2.0), (7, 60.0), (12, 60.0)):
        assert backoff.delay(attempt, rng=random.Random(7)) == raw * (0.5 + 0.5 * random.Random(7).random())
    assert backoff.delay(0, rng=random.Random(7)) == backoff.delay(1, rng=random.Random(7))  # never below base
    with pytest.raises(dataclasses.FrozenInstanceError):
        backoff.base_s = 2.0  # type: ignore[misc]


def test_an_error_that_does_not_say_it_is_transient_is_not_retried():
    error = ValueError("no transient attribute")
    call = Flaky(error)
    outcome, attempts, _ = attempt_run(call, RetryPolicy(5))  # retry_on: any Exception
    assert outcome is error and attempts == [1]
