"""The last resort when the journal cannot be written (a full disk): paid request ids on stderr.

A submitted request id is never lost: when its ``submitted`` event cannot be written, the runner
keeps it in memory, retries the write, stops submitting and cancels what is in flight — and, if
the journal still cannot be written when the run ends, prints every request it could not record
as a *rescue token* on one line::

    kling-lab: error: the journal could not be written (No space left on device); 2 paid requests are
    recorded nowhere else. Once there is space: kling-lab resume --store S --request-id TOKEN --request-id TOKEN

A token is ``<request_id>:<base64url(zlib(json(the submitted event)))>``: everything a resume needs
to journal the request again and collect it (``kling-lab resume --request-id``). A bare request id
is accepted too when the journal or fal's platform API knows it.
"""

from __future__ import annotations

import base64
import json
import shlex
import zlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from kling_lab.errors import InvalidInput


def token(event: Mapping[str, Any]) -> str:
    """A ``submitted`` journal event as a rescue token."""
    body = json.dumps({k: v for k, v in event.items() if k != "event"}, separators=(",", ":"), default=str)
    packed = base64.urlsafe_b64encode(zlib.compress(body.encode("utf-8"), 9)).decode("ascii").rstrip("=")
    return f"{event['request_id']}:{packed}"


def parse(text: str) -> tuple[str, dict[str, Any] | None]:
    """(request_id, its submitted event or None for a bare id) from a token; InvalidInput if malformed."""
    request_id, sep, packed = text.strip().partition(":")
    if not request_id or any(c.isspace() for c in request_id):
        raise InvalidInput(f"--request-id {text[:40]!r}: expected a request id or the token a run printed")
    if not sep:
        return request_id, None
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)))
        event = json.loads(raw)
    except (ValueError, zlib.error):
        raise InvalidInput(f"--request-id {request_id}: the token after ':' is damaged; copy it whole") from None
    required = ("request_id", "fingerprint", "backend", "endpoint", "input", "submitted_at")
    if not isinstance(event, dict) or any(k not in event for k in required) or event["request_id"] != request_id:
        raise InvalidInput(f"--request-id {request_id}: the token does not describe this request")
    try:
        datetime.fromisoformat(event["submitted_at"])
    except (TypeError, ValueError):
        raise InvalidInput(f"--request-id {request_id}: the token's submitted_at is damaged") from None
    return request_id, event


def rescue_line(events: Iterable[Mapping[str, Any]], store_location: str, reason: str) -> str:
    """The one line printed when submitted events could not be journaled."""
    tokens = [token(ev) for ev in events if ev.get("event") == "submitted"]
    if not tokens:
        return f"the journal could not be written ({reason}); nothing paid is missing from it"
    args = " ".join(f"--request-id {shlex.quote(t)}" for t in tokens)
    count = f"{len(tokens)} paid request{'s' if len(tokens) != 1 else ''}"
    return (
        f"the journal could not be written ({reason}); {count} recorded nowhere else. Once there is space: "
        f"kling-lab resume --store {shlex.quote(store_location)} {args}"
    )


__all__ = ["parse", "rescue_line", "token"]
