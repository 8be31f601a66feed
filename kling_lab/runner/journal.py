"""The journal: every request_id fal gave us, written durably (fsync) right after submit.

One JSON-lines file per runner process under ``<store>/journal/``, locked (``flock``) by its
process for as long as it lives: the kernel drops the lock when the process dies, so "is the
runner that wrote this still alive?" is a lock probe, never a PID check (PIDs are reused).
Events:

- ``intent``     written before a submit is sent: intent_id, fingerprint, backend, endpoint,
  input, sweep fields, price. Until a ``submitted`` or ``intent_closed`` follows, fal may or
  may not have the job (the process may have died with the POST on the wire);
- ``unanswered`` a submit attempt of an intent got no answer (the connection dropped after
  the request was sent): fal may have created a job whose id nobody saw;
- ``submitted``  request_id (+ intent_id), fingerprint, backend, endpoint, input, sweep fields —
  written before anything else happens to a new request id (``adopted``: found later through
  fal's platform API, see :mod:`kling_lab.runner.orphans`);
- ``resolved``   an ambiguous submit is settled: ``request_id`` adopted, or none found;
- ``intent_closed`` the intent's submit ended without creating a job (fal answered with an error);
- ``result``     fal's result is known: the video URL (collectable for days, the result itself
  for about an hour);
- ``download_failed`` the paid video could not be fetched yet (bytes received, the error);
- ``downloaded`` the video is in the store (sha256, path) — so a resume never downloads twice;
- ``done``       the terminal row is in the run log.

A request is *pending* while it has ``submitted`` without ``done``. An *ambiguous submit* is
an ``unanswered`` attempt not yet ``resolved``, or an ``intent`` of a dead process with neither
``submitted`` nor ``intent_closed``: its price stays reserved until it is reconciled. Files whose
every request is done are removed by :meth:`Journal.prune`.

When a write fails (a full disk), the event is kept in memory (:attr:`Journal.unwritten`) and
:class:`JournalWriteError` is raised; the runner stops submitting, and prints what it could not
write (see :mod:`kling_lab.runner.rescue`).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kling_lab.errors import KlingLabError
from kling_lab.store.files import fsync_dir
from kling_lab.util.locks import FileLock, locked_elsewhere

WRITE_TRIES = 3
WRITE_RETRY_S = 0.2


class JournalWriteError(KlingLabError):
    """The journal could not be written (disk full, I/O error); the events are kept in memory."""


@dataclass
class PendingRequest:
    """A journaled request with no terminal row yet."""

    request_id: str
    fingerprint: str
    backend: str
    endpoint: str
    input: dict[str, Any]
    submitted_at: datetime
    sweep: dict[str, Any] = field(default_factory=dict)
    downloaded: dict[str, Any] | None = None
    video_url: str | None = None  # from a ``result`` event: downloadable without asking fal again
    download_failed: dict[str, Any] | None = None  # the last failed download (bytes, error)
    owner_pid: int | None = None  # the process whose journal file holds it
    owner_alive: bool = False  # that process still runs (holds its journal's lock)
    adopted: bool = False

    @property
    def age_s(self) -> float:
        return (datetime.now(UTC) - self.submitted_at).total_seconds()


@dataclass
class AmbiguousSubmit:
    """A submit that may have created a job at fal whose id nobody saw (an orphan)."""

    ambiguous_id: str
    intent_id: str
    fingerprint: str
    backend: str
    endpoint: str
    input: dict[str, Any]
    sweep: dict[str, Any]
    price_usd: float
    since: datetime  # the submit was sent after this
    until: datetime | None  # ... and before this (None: its process died with it on the wire)
    owner_alive: bool = False


def _pid_of(path: Path) -> int | None:
    """The pid in a journal file name ``<utc>-<pid>-<id>.jsonl``."""
    parts = path.stem.split("-")
    return int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None


def _when(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else datetime.now(UTC)


class Journal:
    """Append-only, fsync'ed event log of one store's submitted requests."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._path: Path | None = None
        self._lock: FileLock | None = None
        self.unwritten: list[dict[str, Any]] = []  # events a failed write kept in memory
        self._torn = False  # a write failed part-way: end that fragment's line before the next one

    @property
    def path(self) -> Path:
        if self._path is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            self._path = self.directory / f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:6]}.jsonl"
        return self._path

    def _open(self) -> int:
        if self._lock is None:
            lock = FileLock(self.path)
            if not lock.try_acquire():  # a fresh unique name: nobody else can hold it
                raise JournalWriteError(f"could not lock the journal file {self.path}")
            os.lseek(lock.fd, 0, os.SEEK_END)
            self._lock = lock
            fsync_dir(self.directory)
        return self._lock.fd

    def _append(self, event: dict[str, Any]) -> None:
        """Write ``event`` (after any kept in memory) and fsync; retried, then kept and raised."""
        self.unwritten.append(event)
        error: OSError | None = None
        for attempt in range(WRITE_TRIES):
            try:
                fd = self._open()
                while self.unwritten:
                    line = json.dumps(self.unwritten[0], separators=(",", ":"), ensure_ascii=False, default=str)
                    _write_all(fd, (("\n" if self._torn else "") + line + "\n").encode("utf-8"))
                    os.fsync(fd)
                    self._torn = False
                    self.unwritten.pop(0)
                return
            except OSError as exc:
                error = exc
                self._torn = self._lock is not None
                if attempt + 1 < WRITE_TRIES:
                    time.sleep(WRITE_RETRY_S)
        reason = error.strerror if error is not None and error.strerror else str(error)
        raise JournalWriteError(f"the journal could not be written ({reason})") from error

    # -- events ----------------------------------------------------------------------------
    def intent(
        self,
        *,
        fingerprint: str,
        backend: str,
        endpoint: str,
        input: dict[str, Any],
        sweep: dict[str, Any],
        price_usd: float,
    ) -> str:
        """Before a submit is sent; returns the intent's id."""
        intent_id = uuid.uuid4().hex
        self._append(
            {
                "event": "intent",
                "intent_id": intent_id,
                "fingerprint": fingerprint,
                "backend": backend,
                "endpoint": endpoint,
                "input": input,
                "sweep": sweep,
                "price_usd": price_usd,
                "at": datetime.now(UTC).isoformat(),
            }
        )
        return intent_id

    def unanswered(self, *, intent_id: str, error: str) -> str:
        """A submit attempt of ``intent_id`` was sent but never answered; returns the ambiguous id."""
        ambiguous_id = f"{intent_id}#{uuid.uuid4().hex[:8]}"
        self._append(
            {
                "event": "unanswered",
                "intent_id": intent_id,
                "ambiguous_id": ambiguous_id,
                "error": error,
                "at": datetime.now(UTC).isoformat(),
            }
        )
        return ambiguous_id

    def intent_closed(self, *, intent_id: str, reason: str) -> None:
        self._append({"event": "intent_closed", "intent_id": intent_id, "reason": reason})

    def resolved(self, *, ambiguous_id: str, request_id: str | None, how: str) -> None:
        """An ambiguous submit is settled: ``request_id`` adopted (or None: fal has no such job)."""
        self._append({"event": "resolved", "ambiguous_id": ambiguous_id, "request_id": request_id, "how": how})

    def submitted(
        self,
        *,
        request_id: str,
        fingerprint: str,
        backend: str,
        endpoint: str,
        input: dict[str, Any],
        submitted_at: datetime,
        sweep: dict[str, Any],
        intent_id: str | None = None,
        adopted: bool = False,
    ) -> None:
        event: dict[str, Any] = {
            "event": "submitted",
            "request_id": request_id,
            "fingerprint": fingerprint,
            "backend": backend,
            "endpoint": endpoint,
            "input": input,
            "submitted_at": submitted_at.isoformat(),
            "sweep": sweep,
        }
        if intent_id is not None:
            event["intent_id"] = intent_id
        if adopted:
            event["adopted"] = True
        self._append(event)

    def result(self, *, request_id: str, video_url: str) -> None:
        self._append({"event": "result", "request_id": request_id, "video_url": video_url})

    def download_failed(self, *, request_id: str, error: str, error_type: str) -> None:
        self._append({"event": "download_failed", "request_id": request_id, "error": error, "error_type": error_type})

    def downloaded(self, *, request_id: str, **facts: Any) -> None:
        """The video is in the store; ``facts`` are row columns (timestamps as ISO strings)."""
        facts = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in facts.items()}
        self._append({"event": "downloaded", "request_id": request_id, **facts})

    def done(self, *, request_id: str, run_id: str, status: str) -> None:
        self._append({"event": "done", "request_id": request_id, "run_id": run_id, "status": status})

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- reading ---------------------------------------------------------------------------
    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.jsonl")) if self.directory.is_dir() else []

    def _events(self, path: Path) -> Iterator[dict[str, Any]]:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:  # pruned by another runner meanwhile
            return
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:  # a line torn by a crash mid-write: it never completed
                continue
            if isinstance(event, dict):
                yield event

    def read(self) -> JournalState:
        """Everything the journal files say, folded: pending requests and ambiguous submits."""
        state = JournalState()
        for path in self.files():
            own = path == self._path
            alive = not own and locked_elsewhere(path)
            for ev in self._events(path):
                state.add(ev, path, alive, own)
        return state

    def pending(self) -> dict[str, PendingRequest]:
        """Every journaled request without a ``done`` event, by request_id."""
        return self.read().pending()

    def ambiguous(self) -> list[AmbiguousSubmit]:
        """Submits that may have created a job nobody saw, not yet resolved."""
        return self.read().ambiguous()

    def all_request_ids(self) -> set[str]:
        return set(self.read().submitted)

    def prune(self) -> int:
        """When nothing is pending or ambiguous, remove every journal file but this process's open one.

        (Files are kept whole while anything is open: a ``done`` event may live in a
        different file than its ``submitted`` event.)"""
        state = self.read()
        if state.pending() or state.ambiguous():
            return 0
        removed = 0
        for path in self.files():
            if path != self._path or self._lock is None:
                if path != self._path and locked_elsewhere(path):
                    continue  # a live runner's file (it may be about to write to it)
                path.unlink(missing_ok=True)
                removed += 1
        return removed


@dataclass
class JournalState:
    """The journal's events folded per request and per intent."""

    submitted: dict[str, PendingRequest] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)  # intent_id -> intent event (+ _alive)
    intents_answered: set[str] = field(default_factory=set)  # got a request id or was closed
    unanswered: dict[str, dict[str, Any]] = field(default_factory=dict)  # ambiguous_id -> event
    resolved: set[str] = field(default_factory=set)
    extras: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # request_id -> kind -> event

    def add(self, ev: dict[str, Any], path: Path, alive: bool, own: bool = False) -> None:
        """Fold one event of ``path`` (``alive``: another live process writes it; ``own``: this one does)."""
        kind = ev.get("event")
        rid = ev.get("request_id")
        if kind == "intent" and isinstance(ev.get("intent_id"), str):
            self.intents[ev["intent_id"]] = {**ev, "_alive": alive or own}  # ours: still being submitted
        elif kind == "unanswered" and isinstance(ev.get("ambiguous_id"), str):
            self.unanswered[ev["ambiguous_id"]] = {**ev, "_alive": alive}
        elif kind == "intent_closed":
            self.intents_answered.add(str(ev.get("intent_id")))
        elif kind == "resolved":
            self.resolved.add(str(ev.get("ambiguous_id")))
        elif not isinstance(rid, str):  # every other event names its request; skip a malformed line
            return
        elif kind == "submitted":
            try:
                self.submitted[rid] = PendingRequest(
                    request_id=rid,
                    fingerprint=ev["fingerprint"],
                    backend=ev["backend"],
                    endpoint=ev["endpoint"],
                    input=ev["input"],
                    submitted_at=datetime.fromisoformat(ev["submitted_at"]),
                    sweep=ev.get("sweep", {}),
                    owner_pid=_pid_of(path),
                    owner_alive=alive,
                    adopted=bool(ev.get("adopted")),
                )
            except (KeyError, TypeError, ValueError):
                return
            if isinstance(ev.get("intent_id"), str):
                self.intents_answered.add(ev["intent_id"])
        elif kind == "done":
            self.done.add(rid)
        elif kind in ("downloaded", "result", "download_failed"):
            self.extras.setdefault(rid, {})[kind] = ev

    def pending(self) -> dict[str, PendingRequest]:
        result = {}
        for rid, entry in self.submitted.items():
            if rid in self.done:
                continue
            extras = self.extras.get(rid, {})
            if (ev := extras.get("downloaded")) is not None:
                entry.downloaded = {
                    k: (datetime.fromisoformat(v) if k.endswith("_at") and v else v)
                    for k, v in ev.items()
                    if k not in ("event", "request_id")
                }
            if (ev := extras.get("result")) is not None:
                entry.video_url = ev.get("video_url")
            if (ev := extras.get("download_failed")) is not None:
                entry.download_failed = {k: ev.get(k) for k in ("error", "error_type")}
            result[rid] = entry
        return result

    def ambiguous(self) -> list[AmbiguousSubmit]:
        found: list[AmbiguousSubmit] = []

        def make(ambiguous_id: str, intent: dict[str, Any], until: datetime | None, alive: bool) -> AmbiguousSubmit:
            return AmbiguousSubmit(
                ambiguous_id=ambiguous_id,
                intent_id=intent["intent_id"],
                fingerprint=intent.get("fingerprint", ""),
                backend=intent.get("backend", ""),
                endpoint=intent.get("endpoint", ""),
                input=intent.get("input") or {},
                sweep=intent.get("sweep") or {},
                price_usd=float(intent.get("price_usd") or 0.0),
                since=_when(intent.get("at")),
                until=until,
                owner_alive=alive,
            )

        for ambiguous_id, ev in self.unanswered.items():
            intent = self.intents.get(ev.get("intent_id", ""))
            if intent is not None and ambiguous_id not in self.resolved:
                found.append(make(ambiguous_id, intent, _when(ev.get("at")), bool(ev["_alive"])))
        for intent_id, intent in self.intents.items():
            # An intent of a dead process that never got an answer: it may have died with the POST sent.
            if intent_id not in self.intents_answered and not intent["_alive"] and intent_id not in self.resolved:
                found.append(make(intent_id, intent, None, False))
        return found


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


__all__ = ["AmbiguousSubmit", "Journal", "JournalState", "JournalWriteError", "PendingRequest"]
