"""The knobs of one run (:class:`RunOptions`) and what it did (:class:`RunResult`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kling_lab.errors import BackendError, DownloadError
from kling_lab.media.download import MAX_VIDEO_BYTES
from kling_lab.runner.events import RunObserver
from kling_lab.runner.retry import Backoff, RetryPolicy
from kling_lab.store.run_store import RunStore
from kling_lab.util.clock import check_timeout
from kling_lab.util.money import money_text


@dataclass
class RunOptions:
    """Knobs of one run (see :func:`kling_lab.run`)."""

    concurrency: int = 4
    max_cost_usd: float | None = None
    force: bool = False
    request_timeout_s: float | None = None
    poll_interval_s: float | None = None  # None: the backend's own
    max_submit_attempts: int = 6
    max_poll_errors: int = 30
    download_attempts: int = 3
    download_concurrency: int = 4
    max_video_bytes: int = MAX_VIDEO_BYTES
    backoff: Backoff = field(default_factory=Backoff)
    progress: bool = True
    tags: Mapping[str, Any] | None = None
    notebook: str | None = None
    media_hook: Callable[[str], dict[str, Any]] | None = None  # path → probe/qc columns
    observers: Sequence[RunObserver] = ()  # told every job's state changes (see runner.events)
    retry_failed: bool = False  # submit again what fal refused before (see runner.outcomes)
    claim_timeout_s: float = 1800.0  # wait at most this for another process submitting the same request
    orphan_wait_s: float = 60.0  # after an unanswered submit, look for its orphan at fal this long

    def __post_init__(self) -> None:
        for name, least in (
            ("concurrency", 1),
            ("max_submit_attempts", 1),
            ("download_attempts", 1),
            ("max_poll_errors", 0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                kind = "a positive integer" if least else "an integer >= 0"
                raise ValueError(f"{name} must be {kind}; got {value!r}")
        if self.max_cost_usd is not None and not self.max_cost_usd >= 0:
            raise ValueError(f"max_cost_usd must be >= 0; got {self.max_cost_usd!r}")
        self.request_timeout_s = check_timeout(self.request_timeout_s, "request_timeout_s")
        for name in ("claim_timeout_s", "orphan_wait_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 7 * 86400:
                raise ValueError(f"{name} must be a number of seconds from 0 to a week; got {value!r}")
        for observer in self.observers:
            if not callable(getattr(observer, "on_event", None)):
                raise ValueError(f"observers must have an on_event(event) method; got {observer!r}")

    # -- the one retry policy, per call (see runner.retry) -----------------------------------
    @property
    def submit_policy(self) -> RetryPolicy:
        """submit and result: transient BackendErrors, up to ``max_submit_attempts`` tries."""
        return RetryPolicy(self.max_submit_attempts, self.backoff, (BackendError,))

    @property
    def poll_policy(self) -> RetryPolicy:
        """status: ``max_poll_errors`` transient errors in a row are retried (then the request is left pending)."""
        return RetryPolicy(self.max_poll_errors + 1, self.backoff, (BackendError,), max_step=6)

    @property
    def download_policy(self) -> RetryPolicy:
        """the video download: transient DownloadErrors, up to ``download_attempts`` tries."""
        return RetryPolicy(self.download_attempts, self.backoff, (DownloadError,))


@dataclass
class RunResult:
    """What a run did: its rows and the counts a user asks about first."""

    sweep_id: str | None
    rows: list[dict[str, Any]]
    store: RunStore
    submitted: int = 0
    pending: int = 0
    interrupted: bool = False
    backend: str = ""
    busy: int = 0  # not submitted: another process kept the claim past claim_timeout_s
    held: int = 0  # unanswered submits not found at fal yet (their price stays reserved)
    held_usd: float = 0.0
    platform_denied: str | None = None  # why fal's platform API could not be used

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status and not r.get("cache_hit"))

    @property
    def cache_hits(self) -> int:
        return sum(1 for r in self.rows if r.get("cache_hit"))

    @property
    def spent_usd(self) -> float:
        return round(sum(r.get("cost_usd") or 0.0 for r in self.rows), 2)

    def frame(self):
        """This run's rows as a typed DataFrame (like :func:`kling_lab.load_runs`)."""
        from kling_lab.store.run_store import rows_frame

        return rows_frame(self.rows, self.store)

    def summary(self) -> str:
        parts = [f"{self.count('ok')} ok", f"{self.count('failed')} failed"]
        if self.cache_hits:
            parts.append(f"{self.cache_hits} from cache ($0)")
        if self.count("cancelled"):
            parts.append(f"{self.count('cancelled')} cancelled")
        if self.count("skipped_budget"):
            parts.append(f"{self.count('skipped_budget')} skipped: budget cap reached")
        if self.count("skipped_final"):
            parts.append(
                f"{self.count('skipped_final')} skipped: fal refused the same input before (--retry-failed submits them)"
            )
        if self.busy:
            parts.append(f"{self.busy} not submitted: another process kept submitting them")
        if self.pending:
            parts.append(f"{self.pending} paid or pending at fal but not collected yet: run `kling-lab resume`")
        if self.held:
            parts.append(
                f"{self.held} submits unanswered and not found at fal yet: ${self.held_usd:.2f} stays reserved "
                "until `kling-lab reconcile` finds them"
            )
        head = "interrupted: " if self.interrupted else ""
        money = money_text(self.spent_usd, self.backend)
        return f"{head}{', '.join(parts)}; {self.submitted} submitted; {money}; store {self.store.location}"

    __str__ = summary

    def _repr_html_(self) -> str:
        from kling_lab.runner.display import result_html

        return result_html(self)
