"""What every job of one run shares: the backend, the store, the money and the writers."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import httpx

from kling_lab.backends.base import Backend
from kling_lab.runner.budget import Budget
from kling_lab.runner.events import EventBus
from kling_lab.runner.journal import Journal
from kling_lab.runner.options import RunOptions
from kling_lab.runner.orphans import Orphans
from kling_lab.runner.row_writer import RowWriter
from kling_lab.runner.uploads import Uploader
from kling_lab.store.run_store import RunStore


@dataclass
class RunContext:
    """The shared parts of a run; jobs (:mod:`kling_lab.runner.job`) take their turn with them."""

    backend: Backend
    store: RunStore
    options: RunOptions
    journal: Journal
    budget: Budget
    writer: RowWriter
    events: EventBus
    slots: asyncio.Semaphore  # requests in flight at fal (``concurrency``)
    downloads: asyncio.Semaphore  # videos downloading at once
    uploads: Uploader  # local images to fal storage, each content once ever (cached in the store)
    orphans: Orphans  # ambiguous submits looked up (and adopted) through fal's platform API
    rng: random.Random = field(default_factory=random.Random)
    submitted: int = 0  # new requests fal accepted (each one paid unless it fails)
    pending_left: int = 0  # requests left in the journal for a later resume
    held: dict[str, float] = field(default_factory=dict)  # ambiguous submit -> its price, kept reserved
    _http: httpx.AsyncClient | None = None

    async def hold(self, ambiguous_id: str, reserved_usd: float) -> None:
        """Keep ``reserved_usd`` (already reserved) for an ambiguous submit until it is reconciled."""
        self.held[ambiguous_id] = self.held.get(ambiguous_id, 0.0) + reserved_usd
        await self.budget.hold(reserved_usd)

    def release_hold(self, ambiguous_id: str) -> float:
        """The reservation held for an ambiguous submit, handed to whoever adopts its request."""
        amount = self.held.pop(ambiguous_id, 0.0)
        self.budget.unhold(amount)
        return amount

    @property
    def poll_interval_s(self) -> float:
        if self.options.poll_interval_s:
            return self.options.poll_interval_s
        return float(getattr(self.backend, "poll_interval_s", 2.0))

    def claim_key(self, fingerprint: str) -> str:
        """The claim (see :mod:`kling_lab.runner.claims`) that guards submitting ``fingerprint``."""
        return f"{self.backend.name}-{fingerprint}"

    def http(self) -> httpx.AsyncClient:
        """The run's client for video downloads (opened on first use)."""
        if self._http is None:
            self._http = httpx.AsyncClient(follow_redirects=True)
        return self._http

    async def close_http(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
