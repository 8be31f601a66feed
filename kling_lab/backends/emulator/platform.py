"""fal's platform API as the emulator serves it: the requests of an endpoint, and billed usage.

Written from fal's docs (https://fal.ai/docs/platform-apis/v1/models/requests/by-endpoint,
…/v1/models/usage, read 2026-12), with the same paths, query parameters and response shapes:

- ``GET /v1/models/requests/by-endpoint`` — ``endpoint_id`` (comma-separated or repeated, 1–50),
  ``start``/``end`` (ISO 8601; ``start`` defaults to 24 h ago, 90 days with ``request_id``),
  ``status`` (success | error | user_error), ``request_id``, ``expand=payloads``, ``limit`` (≤ 100),
  ``cursor``, ``sort_by`` (ended_at | duration) → ``{"items": [...], "next_cursor", "has_more"}``.
  A request is listed once it has ended (fal sorts the listing by end time and does not document
  in-flight requests in it; listing only ended ones is the cautious reading). ``status_code`` is what
  ``GET …/requests/{id}`` answers: 200 ok, 422 content policy, 500 failed, 400 cancelled.
- ``GET /v1/models/usage`` — ``endpoint_id``, ``start``/``end``, ``expand`` (summary | time_series)
  → ``{"summary": [{"endpoint_id", "unit", "quantity", "unit_price", "cost", "currency"}],
  "time_series": [...], "next_cursor", "has_more"}``: what the jobs that ended ok cost.

Key scopes are the config's ``platform_scope``: ``admin`` may call both, ``api`` (fal's ordinary
key) only the listing (usage answers 403), ``none`` neither (403).
"""

from __future__ import annotations

import base64
import collections
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from kling_lab.backends.emulator.endpoints import ModelEndpoint
from kling_lab.backends.emulator.queue import Job, JobQueue
from kling_lab.backends.emulator.responses import json_response
from kling_lab.util.clock import utcnow

MAX_LIMIT = 100
STATUS_CODES = {"ok": 200, "cancelled": 400, "failed": 500}


class PlatformRoutes:
    """Handlers of the emulated platform API over the queue's jobs."""

    def __init__(
        self,
        queue: JobQueue,
        endpoint_of: Callable[[str], ModelEndpoint[Any] | None],
        file_url: Callable[[Job], Callable[[str], str]],
    ) -> None:
        self.queue = queue
        self._endpoint_of = endpoint_of
        self._file_url = file_url

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/models/requests/by-endpoint", self.requests_by_endpoint),
            web.get("/v1/models/usage", self.usage),
        ]

    # -- shared ------------------------------------------------------------------------------------
    def _refused(self, http: web.Request, need: str) -> web.Response | None:
        value = http.headers.get("Authorization", "")
        if not (value.startswith("Key ") and len(value) > 4):
            return json_response({"detail": "Missing or malformed Authorization header"}, 401)
        scope = self.queue.config.platform_scope
        if scope == "none" or (need == "admin" and scope != "admin"):
            return json_response({"detail": f"This API requires a key with {need.upper()} scope"}, 403)
        return None

    @staticmethod
    def _endpoint_ids(http: web.Request) -> list[str] | web.Response:
        ids = [part for value in http.query.getall("endpoint_id", []) for part in value.split(",") if part]
        if not 1 <= len(ids) <= 50:
            return json_response({"detail": "endpoint_id: give 1-50 endpoint ids"}, 422)
        return ids

    @staticmethod
    def _window(http: web.Request, default_days: float = 1.0) -> tuple[datetime, datetime] | web.Response:
        now = utcnow()
        try:
            start = _parse(http.query.get("start")) or now - timedelta(days=default_days)
            end = _parse(http.query.get("end")) or now
        except ValueError:
            return json_response({"detail": "start/end: expected ISO 8601 dates"}, 422)
        return start, end

    def _status_code(self, job: Job) -> int:
        if job.error_type == "content_policy_violation":
            return 422
        return STATUS_CODES.get(job.state, 500)

    # -- GET /v1/models/requests/by-endpoint --------------------------------------------------------
    async def requests_by_endpoint(self, http: web.Request) -> web.StreamResponse:
        if (refused := self._refused(http, "api")) is not None:
            return refused
        ids = self._endpoint_ids(http)
        if isinstance(ids, web.Response):
            return ids
        request_id = http.query.get("request_id")
        window = self._window(http, default_days=90.0 if request_id else 1.0)
        if isinstance(window, web.Response):
            return window
        start, end = window
        try:
            limit = min(MAX_LIMIT, max(1, int(http.query.get("limit", "50"))))
            offset = _offset(http.query.get("cursor"))
        except ValueError:
            return json_response({"detail": "limit/cursor: invalid value"}, 422)
        status = http.query.get("status")
        expand = {part for value in http.query.getall("expand", []) for part in value.split(",")}
        jobs = [
            job
            for job in self.queue.jobs()
            if job.endpoint in ids
            and job.done
            and start <= job.sent_at < end
            and (request_id is None or job.request_id == request_id)
            and (status is None or _status_class(self._status_code(job)) == status)
        ]
        if http.query.get("sort_by") == "duration":
            jobs.sort(key=lambda job: -(job.inference_time() or 0.0))
        else:
            jobs.sort(key=lambda job: job.finished or 0.0, reverse=True)
        page = jobs[offset : offset + limit]
        items = [self._item(job, "payloads" in expand) for job in page]
        more = offset + limit < len(jobs)
        return json_response(
            {"items": items, "next_cursor": _cursor(offset + limit) if more else None, "has_more": more}, 200
        )

    def _item(self, job: Job, payloads: bool) -> dict[str, Any]:
        ended = job.wall(job.finished)
        started = job.wall(job.started)
        item: dict[str, Any] = {
            "request_id": job.request_id,
            "endpoint_id": job.endpoint,
            "started_at": _iso(started),
            "sent_at": _iso(job.sent_at),
            "ended_at": _iso(ended),
            "status_code": self._status_code(job),
            "duration": round(job.inference_time() or 0.0, 3),
        }
        endpoint = self._endpoint_of(job.endpoint)
        if payloads and endpoint is not None:
            item["json_input"] = job.raw_input if isinstance(job.raw_input, dict) else endpoint.arguments(job.input)
            item["json_output"] = endpoint.output(job, self._file_url(job)) if job.state == "ok" else None
        return item

    # -- GET /v1/models/usage -------------------------------------------------------------------
    async def usage(self, http: web.Request) -> web.StreamResponse:
        if (refused := self._refused(http, "admin")) is not None:
            return refused
        ids = self._endpoint_ids(http)
        if isinstance(ids, web.Response):
            return ids
        window = self._window(http)
        if isinstance(window, web.Response):
            return window
        start, end = window
        expand = {part for value in http.query.getall("expand", ["time_series"]) for part in value.split(",")}
        lines: dict[tuple[str, str, float], float] = collections.defaultdict(float)
        for job in self.queue.jobs():
            ended = job.wall(job.finished)
            if job.endpoint in ids and job.state == "ok" and ended is not None and start <= ended < end:
                lines[(job.endpoint, "unit", round(job.cost_usd, 4))] += 1.0
        summary = [
            {
                "endpoint_id": endpoint,
                "unit": unit,
                "quantity": quantity,
                "unit_price": price,
                "cost": round(quantity * price, 4),
                "currency": "USD",
            }
            for (endpoint, unit, price), quantity in sorted(lines.items())
        ]
        body: dict[str, Any] = {"next_cursor": None, "has_more": False}
        if "summary" in expand:
            body["summary"] = summary
        if "time_series" in expand:
            body["time_series"] = [{"bucket": _iso(start), "results": summary}] if summary else []
        return json_response(body, 200)


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def _status_class(code: int) -> str:
    return "success" if code < 400 else "user_error" if code < 500 else "error"


def _cursor(offset: int) -> str:
    """fal's cursors are opaque base64 strings ("Mg=="); this one encodes the next offset."""
    return base64.b64encode(str(offset).encode()).decode()


def _offset(cursor: str | None) -> int:
    return int(base64.b64decode(cursor).decode()) if cursor else 0


__all__ = ["PlatformRoutes"]
