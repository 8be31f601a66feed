"""Reconcile: what fal has (its platform API) against what the run log and the journal say.

``kling-lab reconcile [--since …]`` lists fal's requests for every endpoint in the log since a
moment (default: 24 hours ago, fal's own default) and reports:

- **orphans**: requests fal has that neither the log nor the journal knows. One that matches an
  open ambiguous submit (same endpoint and input, sent in its window) is *adopted* into the
  journal: ``kling-lab resume`` (or a re-run) then collects and logs it;
- **rows without a request at fal**: logged request ids fal does not list (another account, an
  emulator that restarted, or fal's listing window);
- with a key that may read usage (Admin scope), **fal's billed cost against the logged cost**;
- the ambiguous submits still open, and the price they keep reserved. One whose window fal's
  listing covers, older than :data:`SETTLE_AFTER_S` (any job it made would have ended and be
  listed by now) with no match, is settled as "no job": its reservation is released.

Without access to the listing (401/403) it says so in one line and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from kling_lab.backends.base import Backend
from kling_lab.backends.platform import FalRequestRecord, PlatformAccessDenied, UsageLine
from kling_lab.errors import BackendConfigError, BackendError
from kling_lab.runner.journal import AmbiguousSubmit, Journal
from kling_lab.runner.orphans import Orphans
from kling_lab.store.run_store import RunStore
from kling_lab.util.clock import utcnow

SETTLE_AFTER_S = 6 * 3600.0  # an ambiguous submit this old, with nothing listed for it, made no job


@dataclass
class Reconciliation:
    """What :func:`reconcile` found (and did: ``adopted``, ``settled``)."""

    since: datetime
    endpoints: list[str]
    listed: int = 0
    logged: int = 0
    orphans: list[FalRequestRecord] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)  # request ids journaled for a resume
    missing: list[str] = field(default_factory=list)  # logged request ids fal does not list
    billed_usd: float | None = None  # fal's usage, None without access
    logged_usd: float = 0.0
    usage_note: str | None = None  # why billed cost was not compared
    still_ambiguous: list[AmbiguousSubmit] = field(default_factory=list)
    settled: int = 0

    @property
    def held_usd(self) -> float:
        return float(sum((Decimal(str(a.price_usd)) for a in self.still_ambiguous), Decimal(0)))

    @property
    def clean(self) -> bool:
        """Nothing unknown left: every fal request is logged or adopted, the money agrees."""
        unknown = [o for o in self.orphans if o.request_id not in self.adopted]
        money = self.billed_usd is None or abs(self.billed_usd - self.logged_usd) < 0.005
        return not unknown and not self.missing and not self.still_ambiguous and money and not self.adopted

    def lines(self) -> list[str]:
        when = self.since.isoformat(timespec="seconds").replace("+00:00", "Z")
        out = [
            f"fal lists {self.listed} request{'s' if self.listed != 1 else ''} for {len(self.endpoints)} endpoint"
            f"{'s' if len(self.endpoints) != 1 else ''} since {when}; the log and journal know {self.logged} of them"
        ]
        out.append(f"orphans (at fal, unknown here): {len(self.orphans)}")
        for record in self.orphans:
            sent = record.sent_at.isoformat(timespec="seconds") if record.sent_at else "?"
            what = (
                "adopted: `kling-lab resume` collects and logs it"
                if record.request_id in self.adopted
                else "matches no submit of this store (another tool or person with the same key?)"
            )
            out.append(f"  {record.request_id}  {record.endpoint_id}  sent {sent}  HTTP {record.status_code}: {what}")
        out.append(f"logged requests fal does not list: {len(self.missing)}")
        out.extend(f"  {rid}" for rid in self.missing[:20])
        if self.billed_usd is None:
            out.append(f"billed cost not compared: {self.usage_note}")
        else:
            diff = self.billed_usd - self.logged_usd
            out.append(
                f"billed by fal: ${self.billed_usd:.2f}; logged: ${self.logged_usd:.2f}; difference ${diff:+.2f}"
            )
        out.append(
            f"ambiguous submits still open: {len(self.still_ambiguous)} (${self.held_usd:.2f} reserved)"
            + (f"; {self.settled} settled as no job" if self.settled else "")
        )
        return out


async def reconcile(backend: Backend, store: RunStore, since: datetime | None = None) -> Reconciliation:
    """Compare fal's requests (and billing) with the log and journal; adopt matching orphans."""
    journal = Journal(store.journal_dir)
    orphans = Orphans(backend, journal, store)
    if orphans.platform is None:
        raise BackendConfigError(f"the {backend.name} backend has no platform API to reconcile against")
    ambiguous = [a for a in journal.ambiguous() if a.backend == backend.name and not a.owner_alive]
    table = store.read_table()
    rows = [r for r in table.to_pylist() if r.get("backend") == backend.name] if table.num_rows else []
    endpoints = sorted({r["endpoint"] for r in rows if r.get("endpoint")} | {a.endpoint for a in ambiguous})
    start = since or utcnow() - timedelta(days=1)
    if ambiguous:
        start = min(start, min(a.since for a in ambiguous) - timedelta(minutes=5))
    result = Reconciliation(since=start, endpoints=endpoints)
    if not endpoints:
        return result
    try:
        records = await orphans.platform.requests_by_endpoint(endpoints, start)
    except PlatformAccessDenied as exc:
        raise BackendConfigError(
            f"{exc}: reconcile needs a key that may list requests (API scope); nothing was changed"
        ) from None
    result.listed = len(records)
    known = journal.all_request_ids() | {r["request_id"] for r in rows if r.get("request_id")}
    result.logged = sum(1 for r in records if r.request_id in known)
    result.orphans = [r for r in records if r.request_id not in known]
    for _entry, pending in orphans.settle_matched(ambiguous, records):
        result.adopted.append(pending.request_id)
    listed = {r.request_id for r in records}
    logged_rows = [
        r
        for r in rows
        if r.get("request_id")
        and not r.get("cache_hit")
        and (r.get("submitted_at") or r.get("logged_at") or start) >= start
    ]
    result.missing = sorted({r["request_id"] for r in logged_rows} - listed)
    result.logged_usd = float(sum((Decimal(str(r.get("cost_usd") or 0)) for r in logged_rows), Decimal(0)))
    try:
        usage: list[UsageLine] = await orphans.platform.usage(endpoints, start)
        result.billed_usd = float(sum((Decimal(str(u.cost_usd)) for u in usage), Decimal(0)))
    except PlatformAccessDenied as exc:
        result.usage_note = f"{exc} (usage needs an Admin-scope key)"
    except BackendError as exc:
        result.usage_note = str(exc)
    adopted_ids = {a.ambiguous_id for a, _ in orphans.last_adopted}
    now = utcnow()
    for entry in ambiguous:
        if entry.ambiguous_id in adopted_ids:
            continue
        age = (now - (entry.until or entry.since)).total_seconds()
        if age > SETTLE_AFTER_S and (entry.until or entry.since) >= start:
            journal.resolved(ambiguous_id=entry.ambiguous_id, request_id=None, how="none listed")
            result.settled += 1
        else:
            result.still_ambiguous.append(entry)
    journal.close()
    return result


__all__ = ["SETTLE_AFTER_S", "Reconciliation", "reconcile"]
