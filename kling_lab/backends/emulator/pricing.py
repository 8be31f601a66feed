"""fal's platform pricing API as the emulator serves it: ``GET /v1/models/pricing?endpoint_id=…``.

Shape from fal's docs (https://docs.fal.ai/platform-apis/v1/models/pricing, read 2026-12-01):
1–50 endpoint ids (comma-separated or repeated) → ``{"prices": [{"endpoint_id", "unit_price",
"unit", "currency"}], "next_cursor": null, "has_more": false}``; ``Authorization: Key …`` required.
The emulator answers from the registry's price rules, changed by ``EmulatorConfig.price_overrides``
(endpoint id → unit price) so a test can make fal's price differ from the registry's.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from kling_lab.backends.emulator.queue import JobQueue
from kling_lab.backends.emulator.responses import json_response
from kling_lab.models import model_for_endpoint

MAX_IDS = 50


class PricingRoutes:
    def __init__(self, queue: JobQueue, authorized: Callable[[web.Request], bool]) -> None:
        self.queue, self._authorized = queue, authorized

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v1/models/pricing", self.pricing)]

    async def pricing(self, http: web.Request) -> web.StreamResponse:
        if not self._authorized(http):
            return json_response({"detail": "Missing or malformed Authorization header"}, 401)
        self.queue.counters.calls["pricing"] += 1
        ids = [i for value in http.query.getall("endpoint_id", []) for i in value.split(",") if i]
        if not 1 <= len(ids) <= MAX_IDS:
            detail = [
                {"loc": ["query", "endpoint_id"], "msg": f"give 1 to {MAX_IDS} endpoint ids", "type": "value_error"}
            ]
            return json_response({"detail": detail}, 422)
        overrides = self.queue.config.price_overrides
        prices = []
        for endpoint_id in dict.fromkeys(ids):
            model = model_for_endpoint(endpoint_id)
            endpoint = model.endpoint_by_id(endpoint_id) if model else None
            units = endpoint.price.unit_prices() if endpoint else {}
            if not units:
                continue
            unit, price = next(iter(units.items()))
            if "second" in units:
                unit, price = "second", units["second"]
            value = overrides.get(endpoint_id, float(price))
            prices.append({"endpoint_id": endpoint_id, "unit_price": value, "unit": unit, "currency": "USD"})
        return json_response({"prices": prices, "next_cursor": None, "has_more": False}, 200)


__all__ = ["PricingRoutes"]
