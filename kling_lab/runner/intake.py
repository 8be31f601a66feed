"""Requests a run did not submit itself: the one a journal entry names, and ids taken in by hand
(``kling-lab resume --request-id``: a rescue token a run printed, or a bare id fal's platform API knows)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kling_lab.backends.platform import PlatformAPI
from kling_lab.errors import InvalidInput
from kling_lab.models import ModelRequest, model_for_endpoint, models
from kling_lab.runner.journal import Journal, PendingRequest
from kling_lab.runner.rescue import parse as parse_token


def journaled_request(p: PendingRequest) -> ModelRequest | None:
    """The request a journal entry was submitted with (its arguments as sent; None for an unknown endpoint)."""
    model = model_for_endpoint(p.endpoint)
    endpoint = model.endpoint_by_id(p.endpoint) if model is not None else None
    if model is None or endpoint is None:
        return None
    return ModelRequest(model, endpoint, endpoint.schema.model_validate(p.input))


async def take_in(
    journal: Journal, backend_name: str, platform: PlatformAPI | None, request_ids: Sequence[str]
) -> None:
    """Journal requests given by id or rescue token, so that a resume collects them."""
    known = journal.read()
    for text in request_ids:
        request_id, event = parse_token(text)
        if request_id in known.submitted:
            continue
        if event is None:
            event = await look_up(platform, backend_name, request_id)
        if event.get("backend") != backend_name:
            raise InvalidInput(
                f"--request-id {request_id} was submitted with --backend {event.get('backend')}, not {backend_name}"
            )
        journal.submitted(
            request_id=request_id,
            fingerprint=event["fingerprint"],
            backend=event["backend"],
            endpoint=event["endpoint"],
            input=event["input"],
            submitted_at=datetime.fromisoformat(event["submitted_at"]),
            sweep=event.get("sweep") or {},
        )


async def look_up(platform: PlatformAPI | None, backend_name: str, request_id: str) -> dict[str, Any]:
    """A bare request id the journal does not know: what fal's platform API says about it."""
    if platform is None:
        raise InvalidInput(f"--request-id {request_id}: not in the journal; give the whole token a run printed")
    ids = sorted({e.id for m in models() for e in m.endpoints})
    record = None
    for start in range(0, len(ids), 50):
        records = await platform.requests_by_endpoint(
            ids[start : start + 50], datetime(1970, 1, 1, tzinfo=UTC), request_id=request_id
        )
        record = next((r for r in records if r.request_id == request_id and r.json_input), None)
        if record is not None:
            break
    if record is None:
        raise InvalidInput(f"--request-id {request_id}: fal lists no such request for a registered model")
    pending = PendingRequest(
        request_id=request_id,
        fingerprint="",
        backend=backend_name,
        endpoint=record.endpoint_id,
        input=record.json_input or {},
        submitted_at=record.sent_at or datetime.now(UTC),
    )
    request = journaled_request(pending)
    if request is None:
        raise InvalidInput(f"--request-id {request_id}: {record.endpoint_id} is not a registered model's endpoint")
    return {
        "backend": backend_name,
        "endpoint": record.endpoint_id,
        "fingerprint": request.fingerprint(0),
        "input": record.json_input,
        "submitted_at": pending.submitted_at.isoformat(),
        "sweep": {"repeat": 0, "model": request.alias},
    }


__all__ = ["journaled_request", "look_up", "take_in"]
