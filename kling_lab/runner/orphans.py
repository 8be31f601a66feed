"""Orphans: paid jobs at fal whose request id nobody saw, found and adopted through fal's platform API.

A submit is *ambiguous* when its POST went out and no answer came back (the connection dropped,
or the process died with the POST on the wire): fal may have created — and will bill — a job
whose id is unknown. kling_lab never re-sends such a POST blindly (fal-client would, see
:mod:`kling_lab.backends.submit_guard`). Instead:

1. the attempt is journaled (``unanswered``, :mod:`kling_lab.runner.journal`) and its price
   stays reserved against the cap;
2. fal's platform API lists the endpoint's requests since the submit
   (:class:`~kling_lab.backends.platform.PlatformAPI`; an ordinary API-scope key may); a listed
   request with the same input, sent in the submit's time window, unknown to the journal and
   the run log, is the orphan: it is **adopted** (journaled ``submitted`` with ``adopted``), then
   followed, collected and logged like any other request (its row says ``adopted``);
3. fal lists a request once it has ended, so the runner polls for up to ``orphan_wait_s``
   before it submits again; an orphan that shows up later is adopted by the next run, resume or
   ``kling-lab reconcile``.

Without access to the platform API (a 401/403), this says so once and carries on: ambiguous
prices stay reserved until ``kling-lab reconcile`` (with a key that may list requests) settles them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from kling_lab.backends.base import Backend
from kling_lab.backends.platform import FalRequestRecord, PlatformAccessDenied, PlatformAPI
from kling_lab.errors import BackendError
from kling_lab.runner.journal import AmbiguousSubmit, Journal, PendingRequest
from kling_lab.store.run_store import RunStore
from kling_lab.util.clock import utcnow
from kling_lab.util.text import canonical_json

log = logging.getLogger("kling_lab.runner")

CLOCK_SLACK_S = 120.0  # fal's clock and ours, and the time a POST spends on the wire
FIRST_POLL_S = 0.5
MAX_POLL_S = 15.0


def platform_of(backend: Backend) -> PlatformAPI | None:
    """The backend's platform API client, if it has one (fal and the emulator do)."""
    make = getattr(backend, "platform", None)
    return make() if callable(make) else None


class Orphans:
    """Looks up ambiguous submits at fal and adopts what it finds into the journal."""

    def __init__(self, backend: Backend, journal: Journal, store: RunStore) -> None:
        self.backend = backend
        self.journal = journal
        self.store = store
        self.platform = platform_of(backend)
        self.denied: str | None = None  # why the platform API cannot be used (said once)
        self._taken: set[str] = set()  # request ids adopted by this process
        self.last_adopted: list[tuple[AmbiguousSubmit, PendingRequest]] = []

    @property
    def available(self) -> bool:
        return self.platform is not None and self.denied is None

    async def find(self, entries: Sequence[AmbiguousSubmit]) -> dict[str, FalRequestRecord]:
        """ambiguous_id → the orphan fal lists for it (each listed request matches at most one)."""
        if not entries or not self.available:
            return {}
        assert self.platform is not None
        start = min(e.since for e in entries) - timedelta(seconds=CLOCK_SLACK_S)
        try:
            records = await self.platform.requests_by_endpoint({e.endpoint for e in entries}, start)
        except PlatformAccessDenied as exc:
            self.denied = str(exc)
            log.warning(
                "%s: ambiguous submits cannot be looked up at fal; their prices stay reserved until "
                "`kling-lab reconcile` runs with a key that may list requests",
                exc,
            )
            return {}
        except BackendError as exc:
            log.warning("could not look up orphaned requests at fal yet: %s", exc)
            return {}
        return self.match(entries, records)

    def match(
        self, entries: Sequence[AmbiguousSubmit], records: Sequence[FalRequestRecord]
    ) -> dict[str, FalRequestRecord]:
        """Pair ambiguous submits with listed requests nobody knows (same endpoint and input, in its window)."""
        ids = [r.request_id for r in records]
        known = self.journal.all_request_ids() | self._taken
        known |= {r["request_id"] for r in self.store.rows_where("request_id", ids)} if ids else set()
        free = [r for r in records if r.request_id not in known and r.json_input is not None]
        free.sort(key=lambda r: r.sent_at or datetime.max.replace(tzinfo=utcnow().tzinfo))
        found: dict[str, FalRequestRecord] = {}
        for entry in sorted(entries, key=lambda e: e.since):
            wanted = canonical_json(entry.input)
            low = entry.since - timedelta(seconds=CLOCK_SLACK_S)
            high = (entry.until or utcnow()) + timedelta(seconds=CLOCK_SLACK_S)
            for record in free:
                if record.endpoint_id != entry.endpoint or canonical_json(record.json_input or {}) != wanted:
                    continue
                if record.sent_at is not None and not low <= record.sent_at <= high:
                    continue
                found[entry.ambiguous_id] = record
                free.remove(record)
                break
        return found

    async def wait_for(self, entry: AmbiguousSubmit, wait_s: float) -> FalRequestRecord | None:
        """Poll fal's listing for ``entry``'s orphan for up to ``wait_s`` (fal lists a job once it ended)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        delay = FIRST_POLL_S
        while self.available:
            found = await self.find([entry])
            if entry.ambiguous_id in found:
                return found[entry.ambiguous_id]
            left = deadline - loop.time()
            if left <= 0:
                break
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, MAX_POLL_S)
        return None

    def adopt(self, entry: AmbiguousSubmit, record: FalRequestRecord) -> PendingRequest:
        """Journal the orphan as this ambiguous submit's request (``adopted``) and settle the entry."""
        submitted_at = record.sent_at or entry.until or entry.since
        self.journal.submitted(
            request_id=record.request_id,
            fingerprint=entry.fingerprint,
            backend=entry.backend,
            endpoint=entry.endpoint,
            input=entry.input,
            submitted_at=submitted_at,
            sweep=entry.sweep,
            intent_id=entry.intent_id,
            adopted=True,
        )
        self.journal.resolved(ambiguous_id=entry.ambiguous_id, request_id=record.request_id, how="adopted")
        self._taken.add(record.request_id)
        log.warning(
            "adopted request %s: fal created it for a submit whose answer was lost (%s); it is collected and logged",
            record.request_id,
            entry.fingerprint[:12],
        )
        return PendingRequest(
            request_id=record.request_id,
            fingerprint=entry.fingerprint,
            backend=entry.backend,
            endpoint=entry.endpoint,
            input=entry.input,
            submitted_at=submitted_at,
            sweep=dict(entry.sweep),
            adopted=True,
        )

    async def settle(self, entries: Sequence[AmbiguousSubmit]) -> list[tuple[AmbiguousSubmit, PendingRequest]]:
        """Look every entry up once and adopt what fal lists; the adopted ones with their journal entries."""
        found = await self.find(entries)
        return self._adopt_found(entries, found)

    def settle_matched(
        self, entries: Sequence[AmbiguousSubmit], records: Sequence[FalRequestRecord]
    ) -> list[tuple[AmbiguousSubmit, PendingRequest]]:
        """Like :meth:`settle`, with a listing already fetched."""
        return self._adopt_found(entries, self.match(entries, records) if entries else {})

    def _adopt_found(
        self, entries: Sequence[AmbiguousSubmit], found: dict[str, FalRequestRecord]
    ) -> list[tuple[AmbiguousSubmit, PendingRequest]]:
        by_id = {e.ambiguous_id: e for e in entries}
        self.last_adopted = [(by_id[a], self.adopt(by_id[a], record)) for a, record in found.items()]
        return self.last_adopted


def describe(entry: AmbiguousSubmit) -> dict[str, Any]:
    """An ambiguous submit as plain data (for reports)."""
    return {
        "ambiguous_id": entry.ambiguous_id,
        "fingerprint": entry.fingerprint,
        "endpoint": entry.endpoint,
        "price_usd": entry.price_usd,
        "since": entry.since.isoformat(),
        "sweep_id": entry.sweep.get("sweep_id"),
    }


__all__ = ["CLOCK_SLACK_S", "Orphans", "describe", "platform_of"]
