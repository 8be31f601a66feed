"""Budget: reserve a request's price before submitting it; never exceed the cap.

Two limits, both checked before every submit:

- the run's cap (``--max-cost``) covers the **sweep across runs**: what earlier runs of the
  same sweep spent (its rows in the store) and the prices of its ambiguous submits (sent, never
  answered, not yet reconciled: fal may bill them) start out counted (``already_usd``);
- the store's budget (:mod:`kling_lab.store.budget`), when one is set: shared by every runner
  that writes to the store.

All calls happen on one event loop, so plain attributes are enough; waiting for in-flight
requests to settle uses an ``asyncio.Condition``. The store's budget does file I/O: it runs in
a worker thread.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from kling_lab.store.budget import StoreBudget


def _d(x: float) -> Decimal:
    return Decimal(str(x))


class Budget:
    """Tracks spent + reserved USD against an optional cap (exact decimal arithmetic)."""

    def __init__(
        self, cap_usd: float | None = None, *, already_usd: float = 0.0, store_budget: StoreBudget | None = None
    ) -> None:
        if cap_usd is not None and cap_usd < 0:
            raise ValueError("max cost must be >= 0")
        self.cap = None if cap_usd is None else _d(cap_usd)
        self.already = _d(already_usd)  # earlier runs of the sweep + its ambiguous submits
        self.store_budget = store_budget
        self._spent = Decimal(0)
        self._reserved = Decimal(0)  # in flight: freed (or booked) when their rows settle
        self._held = Decimal(0)  # unanswered submits of this run: kept until reconciled
        self._changed: asyncio.Condition | None = None
        self.refused_by: str | None = None  # what the last refusal was about ("cap" | "store" | "store_error")
        self.store_error = ""  # why the store's budget could not be checked

    @property
    def spent_usd(self) -> float:
        return float(self._spent)

    @property
    def reserved_usd(self) -> float:
        return float(self._reserved)

    @property
    def held_usd(self) -> float:
        return float(self._held)

    def _fits(self, cost: Decimal) -> bool:
        return self.cap is None or self.already + self._spent + self._reserved + self._held + cost <= self.cap

    async def reserve(self, cost_usd: float) -> bool:
        """Reserve ``cost_usd``. If it does not fit but requests are in flight, wait for them:
        a failed one frees its reservation. Return False when it can never fit."""
        cost = _d(cost_usd)
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            while True:
                if self._fits(cost):
                    if self.store_budget is None or await self._store_allows(cost_usd):
                        break
                else:
                    self.refused_by = "cap"
                if self._reserved == 0:
                    return False
                await self._changed.wait()
            self._reserved += cost
            self.refused_by = None
            return True

    async def _store_allows(self, cost_usd: float) -> bool:
        """Ask the store's budget; a check that cannot be made (its files unreadable) is a refusal."""
        assert self.store_budget is not None
        try:
            if await asyncio.to_thread(self.store_budget.try_reserve, cost_usd):
                return True
        except OSError as exc:
            self.refused_by, self.store_error = "store_error", str(exc)
            return False
        self.refused_by = "store"
        return False

    def force_reserve(self, cost_usd: float) -> None:
        """Reserve without checking: for requests already submitted (re-attached, ambiguous)."""
        self._reserved += _d(cost_usd)
        if self.store_budget is not None:
            self.store_budget.force_reserve(cost_usd)

    async def hold(self, reserved_usd: float) -> None:
        """A reservation stays counted against the cap but will not be settled in this run: its
        request is left for a resume, or it stands for an unanswered submit (fal may bill it).
        Waiters are told: nobody waits for it to be freed any more."""
        self._reserved -= _d(reserved_usd)
        self._held += _d(reserved_usd)
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    def unhold(self, held_usd: float) -> None:
        """A held price becomes a reservation again (its orphan was found and is collected)."""
        self._held -= _d(held_usd)
        self._reserved += _d(held_usd)

    async def settle(self, reserved_usd: float, charged_usd: float) -> None:
        """Release a reservation, booking what fal actually charged (0 for failures)."""
        self._reserved -= _d(reserved_usd)
        self._spent += _d(charged_usd)
        if self.store_budget is not None:
            await asyncio.to_thread(self.store_budget.settle, reserved_usd, charged_usd)  # a failed write: a warning
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    def describe_refusal(self) -> str:
        """The skipped_budget row's message."""
        if self.refused_by == "store_error":
            return f"the store's budget could not be checked ({self.store_error}); not submitted"
        if self.refused_by == "store" and self.store_budget is not None:
            return f"the store's budget ({self.store_budget.rule.describe()}) would be exceeded"
        cap = float(self.cap or 0)
        earlier = f"; ${float(self.already):.2f} of it spent or reserved by earlier runs" if self.already else ""
        return f"max cost ${cap:.2f} for this sweep would be exceeded{earlier}"
