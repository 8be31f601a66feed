"""fal's platform API: the requests fal has for an endpoint, and what it billed.

Two calls, as fal documents them (https://fal.ai/docs/platform-apis/v1/models/requests/by-endpoint
and …/v1/models/usage, read 2026-12):

- ``GET {base}/models/requests/by-endpoint?endpoint_id=…&start=…&end=…&expand=payloads&limit=100&cursor=…``
  → ``{"items": [{"request_id", "endpoint_id", "sent_at", "started_at", "ended_at", "status_code",
  "duration", "json_input", "json_output"}], "next_cursor", "has_more"}``. An **API-scope** key
  (the ordinary ``FAL_KEY``) may call it. ``start`` defaults to 24 hours ago at fal.
- ``GET {base}/models/usage?endpoint_id=…&start=…&end=…&expand=summary`` →
  ``{"summary": [{"endpoint_id", "unit", "quantity", "unit_price", "cost", "currency"}], …}``.
  Needs an **Admin-scope** key; an API-scope key gets 403.

``base`` is ``$KLING_LAB_FAL_API_URL`` (the emulator sets it to itself) or ``https://api.fal.ai/v1``.
A 401/403 raises :class:`PlatformAccessDenied`: callers say so once and carry on without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import httpx

from kling_lab.backends.preflight import is_loopback_address
from kling_lab.errors import BackendError

PLATFORM_URL_ENV = "KLING_LAB_FAL_API_URL"  # the emulator sets it to itself (as for the pricing API)
PLACEHOLDER_KEY = "kling-lab-emulator:not-a-real-key"
DEFAULT_PLATFORM_URL = "https://api.fal.ai/v1"
Params = list[tuple[str, str | int | float | bool | None]]
PAGE = 100
MAX_PAGES = 200  # 20,000 requests per call: far more than a sweep makes


class PlatformAccessDenied(BackendError):
    """The key may not call this platform API (401 or 403): e.g. usage needs an Admin-scope key."""


@dataclass(frozen=True)
class FalRequestRecord:
    """One request as fal's platform API lists it."""

    request_id: str
    endpoint_id: str
    sent_at: datetime | None
    ended_at: datetime | None
    status_code: int | None
    json_input: dict[str, Any] | None


@dataclass(frozen=True)
class UsageLine:
    """What fal billed for one endpoint over a period."""

    endpoint_id: str
    unit: str
    quantity: float
    unit_price: float
    cost_usd: float
    currency: str


def platform_url() -> str:
    return os.environ.get(PLATFORM_URL_ENV) or DEFAULT_PLATFORM_URL


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class PlatformAPI:
    """A client of fal's platform API with one key (never logged, never in an error message)."""

    def __init__(self, key: str, *, base_url: str | None = None, timeout_s: float = 30.0) -> None:
        self.base_url = (base_url or platform_url()).rstrip("/")
        host = urlparse(self.base_url).hostname or ""
        self._key = PLACEHOLDER_KEY if is_loopback_address(host) else key  # a user's key never goes to loopback
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"PlatformAPI({self.base_url!r})"

    async def _get(self, client: httpx.AsyncClient, path: str, params: Params) -> dict[str, Any]:
        what = path.rsplit("/", 1)[-1]
        try:
            response = await client.get(
                f"{self.base_url}/{path}", params=params, headers={"Authorization": f"Key {self._key}"}
            )
        except httpx.HTTPError as exc:
            raise BackendError(
                f"fal's platform API ({what}) could not be reached: {type(exc).__name__}",
                error_type="platform_unreachable",
                transient=True,
            ) from None
        if response.status_code in (401, 403):
            raise PlatformAccessDenied(
                f"fal's platform API refused the key for {what} (HTTP {response.status_code})",
                status_code=response.status_code,
                error_type="platform_access_denied",
            )
        if response.status_code != 200:
            raise BackendError(
                f"fal's platform API ({what}) answered HTTP {response.status_code}",
                status_code=response.status_code,
                error_type="platform_error",
                transient=response.status_code in (429, 500, 502, 503, 504),
            )
        body = response.json()
        return body if isinstance(body, dict) else {}

    async def requests_by_endpoint(
        self,
        endpoint_ids: Iterable[str],
        start: datetime,
        end: datetime | None = None,
        *,
        payloads: bool = True,
        request_id: str | None = None,
    ) -> list[FalRequestRecord]:
        """Every request fal lists for ``endpoint_ids`` sent in [start, end), following the pages."""
        ids = sorted(set(endpoint_ids))
        if not ids:
            return []
        params: Params = [("endpoint_id", ",".join(ids)), ("start", _iso(start)), ("limit", PAGE)]
        if end is not None:
            params.append(("end", _iso(end)))
        if payloads:
            params.append(("expand", "payloads"))
        if request_id is not None:
            params.append(("request_id", request_id))
        records: list[FalRequestRecord] = []
        async with httpx.AsyncClient(timeout=self._timeout_s) as client:
            cursor: str | None = None
            for _ in range(MAX_PAGES):
                body = await self._get(client, "models/requests/by-endpoint", [*params, *_cursor(cursor)])
                for item in body.get("items") or []:
                    if isinstance(item, dict) and isinstance(item.get("request_id"), str):
                        records.append(_record(item))
                cursor = body.get("next_cursor")
                if not body.get("has_more") or not cursor:
                    break
        return records

    async def usage(self, endpoint_ids: Iterable[str], start: datetime, end: datetime | None = None) -> list[UsageLine]:
        """fal's billed usage per endpoint in [start, end) (Admin-scope key)."""
        ids = sorted(set(endpoint_ids))
        if not ids:
            return []
        params: Params = [("endpoint_id", ",".join(ids)), ("start", _iso(start)), ("expand", "summary")]
        params.append(("bound_to_timeframe", "false"))
        if end is not None:
            params.append(("end", _iso(end)))
        lines: list[UsageLine] = []
        async with httpx.AsyncClient(timeout=self._timeout_s) as client:
            cursor: str | None = None
            for _ in range(MAX_PAGES):
                body = await self._get(client, "models/usage", [*params, *_cursor(cursor)])
                for item in body.get("summary") or []:
                    if isinstance(item, dict):
                        lines.append(
                            UsageLine(
                                endpoint_id=str(item.get("endpoint_id")),
                                unit=str(item.get("unit", "")),
                                quantity=float(item.get("quantity") or 0),
                                unit_price=float(item.get("unit_price") or 0),
                                cost_usd=float(item.get("cost") or 0),
                                currency=str(item.get("currency", "USD")),
                            )
                        )
                cursor = body.get("next_cursor")
                if not body.get("has_more") or not cursor:
                    break
        return lines


def _cursor(cursor: str | None) -> Params:
    return [("cursor", cursor)] if cursor else []


def _record(item: dict[str, Any]) -> FalRequestRecord:
    payload = item.get("json_input")
    status = item.get("status_code")
    return FalRequestRecord(
        request_id=item["request_id"],
        endpoint_id=str(item.get("endpoint_id", "")),
        sent_at=_parse_time(item.get("sent_at")),
        ended_at=_parse_time(item.get("ended_at")),
        status_code=int(status) if isinstance(status, int) else None,
        json_input=payload if isinstance(payload, dict) else None,
    )


__all__ = [
    "DEFAULT_PLATFORM_URL",
    "PLATFORM_URL_ENV",
    "FalRequestRecord",
    "PlatformAPI",
    "PlatformAccessDenied",
    "UsageLine",
    "platform_url",
]
