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
