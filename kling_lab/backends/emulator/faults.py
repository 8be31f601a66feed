"""Fault injection, decided by the config (deterministic under its seed) and counted in ``faults``.

Infrastructure faults (429 with Retry-After, 500, 503, a dropped connection) can hit any
queue call or download; the others belong to one step: a submit whose response is lost,
a job refused by the content checker, a download cut short.
"""

from __future__ import annotations

from aiohttp import web

from kling_lab.backends.emulator.queue import Job, JobQueue
from kling_lab.backends.emulator.responses import drop, json_response

CONTENT_POLICY_MESSAGE = "The prompt was flagged by the content checker (kling_lab emulator)."
INFRA_ERRORS: dict[str, tuple[int, str, str]] = {
    "429": (429, "rate_limited", "Too many requests (emulated rate limit)"),
    "500": (500, "internal_server_error", "Internal server error (emulated)"),
    "503": (503, "runner_scheduling_failure", "No runner available (emulated)"),
}


class Faults:
    """The fault decisions for a queue's current config, counted in its counters."""

    def __init__(self, queue: JobQueue) -> None:
        self._queue = queue

    def count(self, fault: str) -> None:
        self._queue.counters.faults[fault] += 1

    def infra(self, http: web.Request, call: str, key: str, request_id: str | None = None) -> web.StreamResponse | None:
        """The infrastructure fault response for the next ``call`` on ``key``, or None to go on."""
        config = self._queue.config
        fault = config.http_fault(call, key, self._queue.counters.next_ordinal(call, key))
        if fault is None:
            return None
        self.count(fault)
        if fault == "drop":
            return drop(http)
        status, error_type, message = INFRA_ERRORS[fault]
        headers = {"X-Fal-Error-Type": error_type}
        if fault == "429":
            headers["Retry-After"] = f"{config.retry_after_s:g}"
        return json_response({"detail": message, "error_type": error_type}, status, request_id, headers)

    def lost_submit(self, job: Job) -> bool:
        """True (and counted) when the response to ``job``'s submit is to be lost."""
        config = self._queue.config
        return self._counted("lost_submit", config.chance(config.rate_lost_submit, job.key, "lost_submit"))

    def content_policy(self, job: Job, prompt: str) -> bool:
        """True when the content checker refuses ``job`` (counted by the caller when it fails the job)."""
        config = self._queue.config
        return config.blocks_prompt(prompt) or config.chance(config.rate_content_policy, job.key, "content_policy")

    def truncated_video(self, job: Job, download: int) -> bool:
        """True (and counted) when the ``download``-th download (0-based) of ``job``'s file is cut short."""
        config = self._queue.config
        hit = config.chance(config.rate_truncated_video, job.key, "truncated_video", download)
        return self._counted("truncated_video", hit)

    def _counted(self, fault: str, hit: bool) -> bool:
        if hit:
            self.count(fault)
        return hit
