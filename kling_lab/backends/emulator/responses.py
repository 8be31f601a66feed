"""fal-shaped HTTP answers of the emulator, and the two ways it misbehaves on the wire."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError


def json_response(
    body: Any, status: int, request_id: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer, carrying ``x-fal-request-id`` when it is about a request."""
    all_headers = dict(headers or {})
    if request_id is not None:
        all_headers["x-fal-request-id"] = request_id
    return web.json_response(body, status=status, headers=all_headers)


def validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors in fal's (FastAPI's) 422 shape."""
    return [
        {"loc": ["body", *[str(part) for part in error["loc"]]], "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False)
    ]


def drop(http: web.Request) -> web.Response:
    """Close the connection without answering; the returned response is never sent."""
    if http.transport is not None:
        http.transport.close()
    return web.Response(status=500)


async def truncated(http: web.Request, path: Path, headers: dict[str, str]) -> web.StreamResponse:
    """Announce the full Content-Length, send half of the body, then close the connection."""
    data = path.read_bytes()
    response = web.StreamResponse(headers=headers)
    response.content_length = len(data)
    await response.prepare(http)
    await response.write(data[: len(data) // 2])
    if http.transport is not None:
        http.transport.close()
    return response
