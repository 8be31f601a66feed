"""fal's platform pricing API: what fal says each endpoint costs, compared with the registry.

``GET {base}/models/pricing?endpoint_id=a,b`` (1–50 ids, ``Authorization: Key …``) →
``{"prices": [{"endpoint_id", "unit_price", "unit", "currency"}], "next_cursor", "has_more"}``
(https://docs.fal.ai/platform-apis/v1/models/pricing, read 2026-12-01). ``base`` is
``$KLING_LAB_FAL_API_URL`` (the emulator sets it) or ``https://api.fal.ai/v1``. The user's key is
never sent to a loopback host (the emulator gets a placeholder, as for queue calls).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

import httpx

from kling_lab.errors import BackendConfigError, BackendError
from kling_lab.models import Model, models

PRICING_URL_ENV = "KLING_LAB_FAL_API_URL"
DEFAULT_API_URL = "https://api.fal.ai/v1"
PLACEHOLDER_KEY = "kling-lab-emulator:not-a-real-key"
BATCH = 50
UNIT_NAMES = {"second": "second", "seconds": "second", "video_second": "second", "s": "second", "video": "video"}


@dataclass(frozen=True)
class PriceCheck:
    """One endpoint: the registry's rule against fal's answer (``fal`` is None when fal gave none)."""

    alias: str
    endpoint_id: str
    registry: dict[str, Decimal]  # unit -> price, from the rule
    fal: tuple[Decimal, str, str] | None  # unit_price, unit, currency

    @property
    def status(self) -> str:
        """``same``, ``differs``, ``not listed`` (fal gave no price) or ``unconfirmed`` (no registry price)."""
        if self.fal is None:
            return "not listed"
        if not self.registry:
            return "unconfirmed"
        price, unit, currency = self.fal
        ours = self.registry.get(UNIT_NAMES.get(unit.lower(), unit.lower()))
        return "same" if currency == "USD" and ours is not None and ours == price else "differs"

    def line(self) -> str:
        ours = ", ".join(f"${p} per {u}" for u, p in self.registry.items()) or "no price"
        theirs = "no price listed" if self.fal is None else f"${self.fal[0]} per {self.fal[1]} ({self.fal[2]})"
        return f"{self.status:<11} {self.alias:<26} {self.endpoint_id}: registry {ours}; fal {theirs}"


def api_url() -> str:
    return os.environ.get(PRICING_URL_ENV) or DEFAULT_API_URL


def fetch_prices(endpoint_ids: Iterable[str], key: str, *, base_url: str | None = None) -> dict[str, dict[str, Any]]:
    """fal's price entry per endpoint id (ids fal does not list are absent)."""
    base = (base_url or api_url()).rstrip("/")
    loopback = urlparse(base).hostname in ("127.0.0.1", "localhost", "::1")
    headers = {"Authorization": f"Key {PLACEHOLDER_KEY if loopback else key}"}
    ids = list(dict.fromkeys(endpoint_ids))
    found: dict[str, dict[str, Any]] = {}
    with httpx.Client(timeout=30.0) as client:
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            try:
                response = client.get(
                    f"{base}/models/pricing", params={"endpoint_id": ",".join(batch)}, headers=headers
                )
            except httpx.HTTPError as exc:
                raise BackendError(
                    f"fal's pricing API could not be reached: {type(exc).__name__}", transient=True
                ) from exc
            if response.status_code in (401, 403):
                raise BackendConfigError(f"fal's pricing API refused the key (HTTP {response.status_code})")
            if response.status_code != 200:
                raise BackendError(
                    f"fal's pricing API answered HTTP {response.status_code}", status_code=response.status_code
                )
            for entry in response.json().get("prices", []):
                found[str(entry.get("endpoint_id"))] = entry
    return found


def check_prices(key: str | None = None, *, chosen: Iterable[Model] | None = None) -> list[PriceCheck]:
    """The registry's price of every endpoint beside fal's (needs ``FAL_KEY``)."""
    key = key or os.environ.get("FAL_KEY")
    if not key:
        raise BackendConfigError("checking prices needs FAL_KEY in the environment (fal's pricing API wants a key)")
    pairs = [(m, e) for m in (chosen or models()) for e in m.endpoints]
    answers = fetch_prices([e.id for _, e in pairs], key)
    checks = []
    for model, endpoint in pairs:
        entry = answers.get(endpoint.id)
        fal = None
        if entry is not None:
            fal = (Decimal(str(entry.get("unit_price"))), str(entry.get("unit", "")), str(entry.get("currency", "")))
        checks.append(PriceCheck(model.alias, endpoint.id, endpoint.price.unit_prices(), fal))
    return checks


__all__ = ["DEFAULT_API_URL", "PRICING_URL_ENV", "PriceCheck", "api_url", "check_prices", "fetch_prices"]
