"""Budget: reserve a request's price before submitting it; never exceed the cap.

All calls happen on one event loop, so plain attributes are enough; waiting for
in-flight requests to settle uses an ``asyncio.Condition``.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal


def _d(x: float) -> Decimal:
    return Decimal(str(x))


class Budget:
    """Tracks spent + reserved USD against an optional cap (exact decimal arithmetic)."""

    def __init__(self, cap_usd: float | None = None) -> None:
        if cap_usd is not None and cap_usd < 0:
            raise ValueError("max cost must be >= 0")
        self.cap = None if cap_usd is None else _d(cap_usd)
        self._spent = Decimal(0)
        self._reserved = Decimal(0)
        self._changed: asyncio.Condition | None = None

    @property
    def spent_usd(self) -> float:
        return float(self._spent)

    @property
    def reserved_usd(self) -> float:
        return float(self._reserved)

    def _fits(self, cost: Decimal) -> bool:
        return self.cap is None or self._spent + self._reserved + cost <= self.cap

    async def reserve(self, cost_usd: float) -> bool:
        """Reserve ``cost_usd``. If it does not fit but requests are in flight, wait for them:
        a failed one frees its reservation. Return False when it can never fit."""
        cost = _d(cost_usd)
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            while not self._fits(cost):
                if self._reserved == 0:
                    return False
                await self._changed.wait()
            self._reserved += cost
            return True

    def force_reserve(self, cost_usd: float) -> None:
        """Reserve without checking the cap: for requests already submitted (being re-attached)."""
        self._reserved += _d(cost_usd)

    async def settle(self, reserved_usd: float, charged_usd: float) -> None:
        """Release a reservation, booking what fal actually charged (0 for failures)."""
        self._reserved -= _d(reserved_usd)
        self._spent += _d(charged_usd)
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()
