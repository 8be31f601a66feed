"""Run events: what happens to each job of a run, for observers (progress bar, live widgets).

A run emits ``planned`` for every job when it starts, then the job's transitions
(``queued`` with fal's queue position, ``running``, ``downloading``) and exactly one terminal
event: ``ok``, ``failed``, ``cancelled``, ``skipped_budget``, ``skipped_final`` (fal refused
the same input before: not submitted again) (these carry the job's run-log row), ``cache_hit``
(a $0 row reusing an earlier video) or ``left_pending`` (no row: the request stays in the
journal for ``kling-lab resume``). A job interrupted before it was submitted, or given up after
waiting too long for another process's claim, ends ``cancelled`` without a row.

Observers are called on the runner's event-loop thread, in the order given; an observer
that raises is logged and ignored (watching a run must never cost money).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

log = logging.getLogger("kling_lab.runner")

JobState = Literal[
    "planned",
    "queued",
    "running",
    "downloading",
    "ok",
    "failed",
    "cancelled",
    "skipped_budget",
    "skipped_final",
    "cache_hit",
    "left_pending",
]
JOB_STATES: tuple[str, ...] = get_args(JobState)
TERMINAL_STATES = frozenset(
    {"ok", "failed", "cancelled", "skipped_budget", "skipped_final", "cache_hit", "left_pending"}
)


@dataclass(frozen=True)
class JobEvent:
    """One job's new state. ``row`` (read-only) is the terminal row, for terminal states."""

    fingerprint: str
    repeat: int
    sweep_index: int | None
    state: JobState
    request_id: str | None = None
    queue_position: int | None = None
    message: str | None = None  # failure reason, etc.
    row: Mapping[str, Any] | None = None
    spent_usd: float = 0.0  # this run's cost so far (fal prices)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


class RunObserver(Protocol):
    """Anything with ``on_event``; pass it as ``kling_lab.run(..., observers=[...])``."""

    def on_event(self, event: JobEvent) -> None: ...


class EventBus:
    """Delivers events to observers; a failing observer is logged and ignored."""

    def __init__(self, observers: Sequence[RunObserver] = (), spent_usd: Callable[[], float] = lambda: 0.0) -> None:
        self.observers = list(observers)
        self._spent_usd = spent_usd
        self._warned: set[int] = set()

    def emit(self, job_row: Mapping[str, Any], state: JobState, **fields: Any) -> JobEvent:
        """Build the event of the job whose (base) row is ``job_row`` and deliver it."""
        event = JobEvent(
            fingerprint=job_row["fingerprint"],
            repeat=job_row.get("repeat", 0),  # judge calls have no repeat
            sweep_index=job_row.get("sweep_index"),
            state=state,
            spent_usd=self._spent_usd(),
            **fields,
        )
        for observer in self.observers:
            try:
                observer.on_event(event)
            except Exception:  # an observer must never stop (or cost) a run
                first = id(observer) not in self._warned
                self._warned.add(id(observer))
                log.warning("run observer %r failed on a %r event; ignored", observer, state, exc_info=first)
        return event
