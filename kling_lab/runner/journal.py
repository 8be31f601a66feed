"""The journal: every request_id fal gave us, written durably (fsync) right after submit.

One JSON-lines file per runner process under ``<store>/journal/``. Events:

- ``submitted``  request_id, fingerprint, backend, endpoint, input, sweep fields — written
  before anything else happens to a new request id;
- ``downloaded`` the video is in the store (sha256, path) — so a resume never downloads twice;
- ``done``       the terminal row is in the run log.

A request is *pending* while it has ``submitted`` without ``done``. Files whose every
request is done are removed by :meth:`Journal.prune`.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kling_lab.store.files import fsync_dir
from kling_lab.util.processes import pid_alive


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
    owner_pid: int | None = None  # the process whose journal file holds it

    @property
    def owner_alive(self) -> bool:
        """Is the process that submitted it still running (another runner may be collecting it)?"""
        return self.owner_pid != os.getpid() and pid_alive(self.owner_pid)

    @property
    def age_s(self) -> float:
        return (datetime.now(UTC) - self.submitted_at).total_seconds()


def _pid_of(path: Path) -> int | None:
    """The pid in a journal file name ``<utc>-<pid>-<id>.jsonl``."""
    parts = path.stem.split("-")
    return int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None


class Journal:
    """Append-only, fsync'ed event log of one store's submitted requests."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._path: Path | None = None
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            self._path = self.directory / f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:6]}.jsonl"
        return self._path

    def _append(self, event: dict[str, Any]) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            fsync_dir(self.directory)
        line = json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str) + "\n"
        os.write(self._fd, line.encode("utf-8"))
        os.fsync(self._fd)

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
    ) -> None:
        self._append(
            {
                "event": "submitted",
                "request_id": request_id,
                "fingerprint": fingerprint,
                "backend": backend,
                "endpoint": endpoint,
                "input": input,
                "submitted_at": submitted_at.isoformat(),
                "sweep": sweep,
            }
        )

    def downloaded(self, *, request_id: str, **facts: Any) -> None:
        """The video is in the store; ``facts`` are row columns (timestamps as ISO strings)."""
        facts = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in facts.items()}
        self._append({"event": "downloaded", "request_id": request_id, **facts})

    def done(self, *, request_id: str, run_id: str, status: str) -> None:
        self._append({"event": "done", "request_id": request_id, "run_id": run_id, "status": status})

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- reading ---------------------------------------------------------------------------
    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.jsonl")) if self.directory.is_dir() else []

    def _events(self, path: Path) -> Iterator[dict[str, Any]]:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:  # a line torn by a crash mid-write: it never completed
                    continue

    def pending(self) -> dict[str, PendingRequest]:
        """Every journaled request without a ``done`` event, by request_id."""
        submitted: dict[str, PendingRequest] = {}
        downloaded: dict[str, dict[str, Any]] = {}
        done: set[str] = set()
        for path in self.files():
            for ev in self._events(path):
                rid = ev.get("request_id")
                if not isinstance(rid, str):  # every event names its request; skip a malformed line
                    continue
                kind = ev.get("event")
                if kind == "submitted":
                    submitted[rid] = PendingRequest(
                        request_id=rid,
                        fingerprint=ev["fingerprint"],
                        backend=ev["backend"],
                        endpoint=ev["endpoint"],
                        input=ev["input"],
                        submitted_at=datetime.fromisoformat(ev["submitted_at"]),
                        sweep=ev.get("sweep", {}),
                        owner_pid=_pid_of(path),
                    )
                elif kind == "downloaded":
                    downloaded[rid] = {
                        k: (datetime.fromisoformat(v) if k.endswith("_at") and v else v)
                        for k, v in ev.items()
                        if k not in ("event", "request_id")
                    }
                elif kind == "done":
                    done.add(rid)
        result = {}
        for rid, entry in submitted.items():
            if rid not in done:
                entry.downloaded = downloaded.get(rid)
                result[rid] = entry
        return result

    def all_request_ids(self) -> set[str]:
        return {ev["request_id"] for p in self.files() for ev in self._events(p) if ev.get("event") == "submitted"}

    def prune(self) -> int:
        """When no request is pending, remove every journal file but this process's open one.

        (Files are kept whole while anything is pending: a ``done`` event may live in a
        different file than its ``submitted`` event.)"""
        if self.pending():
            return 0
        removed = 0
        for path in self.files():
            if path != self._path or self._fd is None:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
