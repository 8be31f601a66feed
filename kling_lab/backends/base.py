"""The Backend protocol and the queue status types (mirroring fal_client's).

A backend does four queue calls, each naming the fal endpoint (as ``fal_client`` does): submit,
status, result, cancel; and it uploads files to fal storage (image-to-video inputs). Every
failure is raised as :class:`~kling_lab.errors.BackendError`, which says whether it is transient
(worth retrying) and carries fal's ``error_type``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


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
    storage_namespace: str  # whose fal storage an upload's URL lives in (the upload cache's key)

    async def submit(self, endpoint: str, arguments: Mapping[str, Any], *, fingerprint: str | None = None) -> str:
        """Submit one request to ``endpoint``; return fal's request_id."""

    async def status(self, endpoint: str, request_id: str) -> Status:
        """The request's current state (with logs)."""

    async def result(self, endpoint: str, request_id: str) -> dict[str, Any]:
        """The result JSON of a completed request; raises BackendError if it failed."""

    async def cancel(self, endpoint: str, request_id: str) -> str:
        """Ask fal to cancel: "requested", "completed" (too late, it finished) or "unknown"."""

    async def upload(self, data: bytes, content_type: str, file_name: str) -> str:
        """Put ``data`` in fal storage; return its URL (what an ``image_url`` input takes)."""

    async def aclose(self) -> None:
        """Release connections."""
