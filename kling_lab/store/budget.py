"""A store-wide budget that every runner checks before reserving a request's price.

``<store>/budget.json`` holds the limit (``kling-lab budget set 200 [--per-user] [--per-month]``).
Spend against it is, for the runner's backend (fal's real spend and the emulator's placeholder
prices are counted apart):

    the run log's cost_usd (this user's rows with --per-user, this UTC month's with --per-month)
    + what live runners have reserved or charged but not logged yet (their ledger files)

Each runner keeps a ledger file ``<store>/budget/ledger/<id>.json`` (reserved, charged-but-not-logged,
user, month) up to date while it runs and deletes it at the end. A ledger whose runner died is
ignored: on a local store its runner's ``flock`` is gone; on object storage its ``expires_at``
(renewed every minute) passed. Checking and reserving happen under a lock (a local ``flock``, an
S3 conditional-write lease, or — on other object stores — nothing: two runners checking in the
same instant could then both pass; say so in the docs). On a local store every rewrite or removal of
a ledger, and every read of the others' ledgers, happens under that lock too: a ledger is rewritten in
place (its ``flock`` lives on the file), so a reader beside the rewrite would see it empty and miss its
money. (An object PUT replaces a ledger whole: no lock is needed there.) Within one runner, whose
ledger changes from a worker thread and from its event loop, the changes take turns, so the newest
state is the one stored. A ledger write that fails after a settle or a log is a warning: the ledger
then shows more open money than there is, which others count, never less.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow.compute as pc

from kling_lab.errors import InvalidInput
from kling_lab.store.conditional import ConditionalObjects
from kling_lab.store.files import LocalFiles, RemoteFiles
from kling_lab.store.run_store import RunStore
from kling_lab.util.locks import FileLock, read_if_locked_elsewhere

log = logging.getLogger("kling_lab.store")

BUDGET_KEY = "budget.json"
LEDGER_DIR = "budget/ledger"
LEDGER_LEASE_S = 300.0
LOCK_KEY = "budget/.lock.json"
LOCK_LEASE_S = 30.0
NOT_UPDATED = "the store's budget ledger could not be updated: %s"


def _d(x: float) -> Decimal:
    return Decimal(str(x))


@dataclass(frozen=True)
class BudgetRule:
    """The store's limit: in USD, optionally per user and/or per calendar month (UTC)."""

    limit_usd: float
    per_user: bool = False
    per_month: bool = False

    def describe(self) -> str:
        scope = " ".join(s for s in ("per user" if self.per_user else "", "per month" if self.per_month else "") if s)
        return f"${self.limit_usd:.2f}" + (f" {scope}" if scope else " in all")


def this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def read_rule(store: RunStore) -> BudgetRule | None:
    """The store's budget rule, or None when none is set."""
    files = store.files
    if not files.exists(BUDGET_KEY):
        return None
    try:
        if isinstance(files, LocalFiles):
            data = (store.root / BUDGET_KEY).read_text()
        else:
            with files.fs.open(f"{files.base}/{BUDGET_KEY}", "r") as fh:
                data = fh.read()
        raw = json.loads(data)
        return BudgetRule(float(raw["limit_usd"]), bool(raw.get("per_user")), bool(raw.get("per_month")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"the store's budget file {BUDGET_KEY} is unreadable ({exc}); set it again") from None


def write_rule(store: RunStore, rule: BudgetRule | None) -> None:
    """Set (or, with None, remove) the store's budget rule."""
    store.require_writable()
    if rule is None:
        store.files.delete(BUDGET_KEY)
        return
    if not rule.limit_usd >= 0 or rule.limit_usd == float("inf"):
        raise InvalidInput(f"a budget must be a finite amount >= 0; got {rule.limit_usd!r}")
    tmp = store.new_tmp_path(".json")
    tmp.write_text(json.dumps(asdict(rule)))
    store.files.put_file(tmp, BUDGET_KEY)
    tmp.unlink(missing_ok=True)


def logged_spend(store: RunStore, rule: BudgetRule, backend: str, user: str, month: str) -> Decimal:
    """What the run log says was spent, within the rule's scope, on ``backend``."""
    table = store.read_table()
    if table.num_rows == 0:
        return Decimal(0)
    mask = pc.equal(table.column("backend"), backend)
    if rule.per_user:
        mask = pc.and_(mask, pc.equal(table.column("user"), user))
    if rule.per_month:
        months = pc.strftime(table.column("logged_at"), format="%Y-%m")
        mask = pc.and_(mask, pc.equal(months, month))
    costs = table.filter(pc.fill_null(mask, False)).column("cost_usd")
    total = pc.sum(costs).as_py()
    return _d(round(total or 0.0, 6))


@dataclass
class Ledger:
    """One runner's not-yet-logged money: reserved (in flight) and charged (rows not written yet)."""

    backend: str
    user: str
    month: str
    reserved_usd: float = 0.0
    charged_usd: float = 0.0
    host: str = ""
    pid: int = 0
    expires_at: str = ""

    @property
    def open_usd(self) -> Decimal:
        return _d(self.reserved_usd) + _d(self.charged_usd)


class StoreBudget:
    """Checks and books one runner's reservations against the store's rule (see the module doc)."""

    def __init__(self, store: RunStore, rule: BudgetRule, backend: str, user: str) -> None:
        self.store = store
        self.rule = rule
        self.ledger = Ledger(backend=backend, user=user, month=this_month(), host=socket.gethostname(), pid=os.getpid())
        self.key = f"{LEDGER_DIR}/{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        self._local = isinstance(store.files, LocalFiles)
        self._ledger_lock: FileLock | None = None
        self._turns = threading.RLock()  # this runner's threads change its ledger one at a time
        self._objects = None if self._local else ConditionalObjects.for_store(store.files)
        if not self._local and self._objects is None:
            log.warning(
                "%s cannot lock (no conditional writes): two runners checking the budget at the same instant "
                "could both pass",
                store.location,
            )

    @classmethod
    def for_runner(cls, store: RunStore, backend: str, user: str) -> StoreBudget | None:
        rule = read_rule(store)
        return None if rule is None else cls(store, rule, backend, user)

    # -- the lock around check-and-book ---------------------------------------------------------
    @contextmanager
    def _ledger_change(self) -> Iterator[None]:
        """Around a change of this runner's ledger: its threads take turns; on a local store, under the
        store's lock (readers must not see it half rewritten; see the module doc)."""
        if self._local:
            with self._locked():
                yield
        else:
            with self._turns:
                yield

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The store's lock around check-and-book (this runner's threads take turns first)."""
        with self._turns, self._store_lock():
            yield

    @contextmanager
    def _store_lock(self) -> Iterator[None]:
        if self._local:
            lock = FileLock(self.store.root / "budget" / ".lock")
            while not lock.try_acquire():
                time.sleep(0.02)
            try:
                yield
            finally:
                lock.release()
            return
        if self._objects is None:
            yield
            return
        body = json.dumps({"expires_at": (datetime.now(UTC) + timedelta(seconds=LOCK_LEASE_S)).isoformat()})
        deadline = time.monotonic() + 4 * LOCK_LEASE_S
        etag = None
        while etag is None:
            etag = self._objects.create(LOCK_KEY, body.encode())
            if etag is None:
                current = self._objects.read(LOCK_KEY)
                if current is not None and _expired(current[0]):
                    etag = self._objects.replace(LOCK_KEY, body.encode(), current[1])
                if etag is None:
                    if time.monotonic() > deadline:
                        raise OSError(f"the budget lock of {self.store.location} stayed taken")
                    time.sleep(0.1)
        try:
            yield
        finally:
            self._objects.delete(LOCK_KEY, etag)

    # -- ledgers --------------------------------------------------------------------------------
    def _write_ledger(self) -> None:
        led = self.ledger
        led.expires_at = (datetime.now(UTC) + timedelta(seconds=LEDGER_LEASE_S)).isoformat()
        data = json.dumps(asdict(led))
        if self._local:
            if self._ledger_lock is None:
                self._ledger_lock = FileLock(self.store.root / self.key)
                self._ledger_lock.try_acquire()
            fd = self._ledger_lock.fd
            os.ftruncate(fd, 0)
            os.pwrite(fd, data.encode(), 0)
            os.fsync(fd)
        else:
            tmp = self.store.new_tmp_path(".json")
            tmp.write_text(data)
            self.store.files.put_file(tmp, self.key)
            tmp.unlink(missing_ok=True)

    def others(self) -> list[Ledger]:
        """The ledgers of other live runners."""
        found = []
        if self._local:
            directory = self.store.root / LEDGER_DIR
            paths = sorted(directory.glob("*.json")) if directory.is_dir() else []
            for path in paths:
                if path == self.store.root / self.key:
                    continue
                data = read_if_locked_elsewhere(path)  # None: its runner is gone (or it just ended)
                if data is not None and (led := _ledger(data.decode(errors="replace"))) is not None:
                    found.append(led)
        elif isinstance(files := self.store.files, RemoteFiles):
            for key in sorted(files.find(LEDGER_DIR)):
                if key == self.key:
                    continue
                try:
                    with files.fs.open(f"{files.base}/{key}", "r") as fh:
                        led = _ledger(fh.read())
                except FileNotFoundError:
                    continue
                if led is not None and not _expired(json.dumps({"expires_at": led.expires_at}).encode()):
                    found.append(led)
        return found

    def _in_scope(self, led: Ledger) -> bool:
        mine = self.ledger
        return (
            led.backend == mine.backend
            and (not self.rule.per_user or led.user == mine.user)
            and (not self.rule.per_month or led.month == mine.month)
        )

    def spent_and_open(self) -> tuple[Decimal, Decimal]:
        """(logged spend, other runners' open money) within this runner's scope."""
        with self._locked() if self._local else contextlib.nullcontext():  # see the module doc
            return self._spent_and_open()

    def _spent_and_open(self) -> tuple[Decimal, Decimal]:
        logged = logged_spend(self.store, self.rule, self.ledger.backend, self.ledger.user, self.ledger.month)
        others = sum((led.open_usd for led in self.others() if self._in_scope(led)), Decimal(0))
        return logged, others

    # -- what the runner calls ----------------------------------------------------------------------
    def try_reserve(self, cost_usd: float) -> bool:
        """Book ``cost_usd`` if logged + others' open + ours + it stays within the limit."""
        with self._locked():
            logged, others = self._spent_and_open()
            total = logged + others + self.ledger.open_usd + _d(cost_usd)
            if total > _d(self.rule.limit_usd):
                return False
            self.ledger.reserved_usd = float(_d(self.ledger.reserved_usd) + _d(cost_usd))
            self._write_ledger()
            return True

    def force_reserve(self, cost_usd: float) -> None:
        """Book an already-submitted request's price (re-attached, or an ambiguous submit)."""
        with self._ledger_change():
            self.ledger.reserved_usd = float(_d(self.ledger.reserved_usd) + _d(cost_usd))
            self._write_ledger()

    def settle(self, reserved_usd: float, charged_usd: float) -> None:
        """A reservation ended; ``charged_usd`` of it is owed until its row is in the log."""
        try:
            with self._ledger_change():
                self.ledger.reserved_usd = float(max(Decimal(0), _d(self.ledger.reserved_usd) - _d(reserved_usd)))
                self.ledger.charged_usd = float(_d(self.ledger.charged_usd) + _d(charged_usd))
                self._write_ledger()
        except OSError as exc:
            log.warning(NOT_UPDATED, exc)

    def logged(self, charged_usd: float) -> None:
        """Rows costing ``charged_usd`` are now in the run log (the row writer calls this after a flush)."""
        if charged_usd:
            try:
                with self._ledger_change():
                    self.ledger.charged_usd = float(max(Decimal(0), _d(self.ledger.charged_usd) - _d(charged_usd)))
                    self._write_ledger()
            except OSError as exc:
                log.warning(NOT_UPDATED, exc)

    def heartbeat(self) -> None:
        if not self._local:
            with self._ledger_change():
                self._write_ledger()

    def close(self) -> None:
        """Remove this runner's ledger (everything it charged is in the log by now)."""
        if self._local:
            if self._ledger_lock is not None:
                with self._ledger_change():
                    self._ledger_lock.release(unlink=True)
                self._ledger_lock = None
        else:
            with self._ledger_change():
                self.store.files.delete(self.key)


def _ledger(text: str) -> Ledger | None:
    try:
        raw = json.loads(text)
        return Ledger(**{k: raw[k] for k in Ledger.__dataclass_fields__ if k in raw})
    except (ValueError, TypeError):
        return None


def _expired(data: bytes) -> bool:
    try:
        return datetime.fromisoformat(json.loads(data)["expires_at"]) < datetime.now(UTC)
    except (ValueError, KeyError, TypeError):
        return True


def budget_report(store: RunStore, backend: str, user: str) -> dict[str, Any] | None:
    """What ``kling-lab budget`` prints: the rule, spend in scope, live runners' open money, what is left."""
    rule = read_rule(store)
    if rule is None:
        return None
    probe = StoreBudget(store, rule, backend, user)
    logged, others = probe.spent_and_open()
    left = max(Decimal(0), _d(rule.limit_usd) - logged - others)
    return {
        "rule": rule,
        "backend": backend,
        "user": user,
        "month": probe.ledger.month,
        "spent_usd": float(logged),
        "open_usd": float(others),
        "left_usd": float(left),
    }


__all__ = [
    "BudgetRule",
    "Ledger",
    "StoreBudget",
    "budget_report",
    "logged_spend",
    "read_rule",
    "this_month",
    "write_rule",
]
