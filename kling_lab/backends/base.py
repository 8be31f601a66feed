"""The Backend protocol and the queue status types (mirroring fal_client's).

A backend does four queue calls for one endpoint: submit, status, result, cancel.
Every failure is raised as :class:`~kling_lab.errors.BackendError`, which says whether
it is transient (worth retrying) and carries fal's ``error_type``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from kling_lab.request import KlingRequest


@dataclass(frozen=True)
class Queued:
    """Waiting in fal's queue; ``position`` is 0-based."""

    position: int


@dataclass(frozen=True)
class InProgress:
    """Running on a fal runner."""

    logs: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Completed:
    """Finished. Completed is not success: ``error``/``error_type`` are set when it failed."""

    logs: list[dict[str, Any]] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None


Status = Queued | InProgress | Completed


@runtime_checkable
class Backend(Protocol):
    """What the runner needs from a queue: real fal or the local emulator."""

    name: str  # written to the log's ``backend`` column: "fal" | "emulator"
    endpoint: str

    async def submit(self, request: KlingRequest, *, fingerprint: str | None = None) -> str:
        """Submit one request; return fal's request_id."""

    async def status(self, request_id: str) -> Status:
        """The request's current state (with logs)."""

    async def result(self, request_id: str) -> dict[str, Any]:
        """The result JSON of a completed request; raises BackendError if it failed."""

    async def cancel(self, request_id: str) -> str:
        """Ask fal to cancel: "requested", "completed" (too late, it finished) or "unknown"."""

    async def aclose(self) -> None:
        """Release connections."""
