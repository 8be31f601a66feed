"""Which failures are final (never submitted again by a re-run) and which a re-run may retry.

fal answers a request it refuses *because of its input* with a model error (a 422 with a typed
``detail``: ``content_policy_violation``, ``image_too_large``, a value out of range, …): sending
the same input again gets the same answer, and fal may bill a refusal. Those rows are **final**:
a re-run logs ``skipped_final`` for them instead of paying again (``--retry-failed`` /
``retry_failed=True`` submits them anyway).

Everything else may go differently next time and is **retried by a re-run**: fal's request
errors (infrastructure: timeouts, runner failures, 5xx — "Failed requests that return 5xx status
codes are not billed", fal's reliability docs), rate limits, kling_lab's own ``--timeout``,
interruptions, budget skips and results fal no longer keeps. Unknown error types count as final:
not paying twice is the safe side, and ``--retry-failed`` is one flag away.
"""

from __future__ import annotations

# fal's request error types (https://fal.ai/docs/documentation/model-apis/request-errors, 2026-12).
FAL_REQUEST_ERRORS = frozenset(
    {
        "request_timeout",
        "startup_timeout",
        "runner_scheduling_failure",
        "runner_connection_timeout",
        "runner_disconnected",
        "runner_connection_refused",
        "runner_connection_error",
        "runner_incomplete_response",
        "runner_server_error",
        "client_disconnected",
        "client_cancelled",
        "bad_request",
        "internal_error",
        "internal_server_error",
    }
)

# kling_lab's own error types of failures that say nothing about the input.
KLING_LAB_RETRYABLE = frozenset(
    {
        "timeout",  # --timeout, cancelled at fal
        "interrupted",
        "request_cancelled",
        "budget",
        "rate_limited",
        "connection_error",
        "submit_unanswered",
        "submit_error",
        "status_error",
        "result_error",
        "result_expired",  # fal no longer has it: a re-run pays for a new one
        "video_expired",
        "bad_result",
        "client_error",
        "unauthorized",
        "forbidden",
        "not_found",
        "tls_certificate",
        "journal_write_failed",
        "upload_error",
        "model_error",  # completed with an error but no type: nothing says it is the input's fault
    }
)

RETRYABLE_ON_RERUN = FAL_REQUEST_ERRORS | KLING_LAB_RETRYABLE


def is_final(error_type: str | None) -> bool:
    """Is a ``failed`` row with this ``error_type`` a verdict on its input (never re-submitted by a re-run)?"""
    if not error_type:
        return False
    retryable = error_type in RETRYABLE_ON_RERUN or error_type.startswith("http_5") or error_type == "http_429"
    return not retryable


__all__ = ["FAL_REQUEST_ERRORS", "RETRYABLE_ON_RERUN", "is_final"]
