"""Claims: one process at a time submits a given request.

Two notebooks (or a notebook and a terminal) running the same sweep into the same store
would otherwise both submit and both pay. Before submitting, a runner claims the request's
key:

- **on this machine** with an OS lock (``flock``, :mod:`kling_lab.util.locks`) on
  ``<journal>/claims/<key>.lock``. The kernel drops the lock when its process exits, however it
  exits (SIGKILL included), so a stale claim or a reused PID can never block a run. The file
  holds the holder's pid, host and start time, only for the message of whoever waits.
- **across machines**, when the store is on S3 (or a server that honours S3's conditional
  writes, like moto): a lease object ``claims/<key>.json`` in the store, created with
  ``If-None-Match: *`` (exactly one machine wins), renewed with ``If-Match`` while the job
  lives (:meth:`Claims.heartbeat`), deleted with ``If-Match`` when it ends. A lease whose
  holder stopped renewing it (a killed machine) expires after :data:`LEASE_S` and is taken over
  with ``If-Match`` on the expired version. Other stores (local disks of different machines,
  gs://, az://, an S3 server that ignores the headers) get machine-local claims only.

A runner that finds a claim held waits for it (with a message and a timeout, see
:mod:`kling_lab.runner.orchestrator`), then looks at the store again: the other process's
result is then a cache hit.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kling_lab.store.conditional import ConditionalObjects
from kling_lab.util.locks import FileLock, lock_info, locked_elsewhere

log = logging.getLogger("kling_lab.runner")

LEASE_S = 300.0  # a cross-machine claim not renewed for this long is stale
RENEW_EVERY_S = 60.0


def _holder_info() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now(UTC).isoformat()}


@dataclass
class _Lease:
    key: str
    etag: str


class RemoteLeases:
    """Cross-machine claims as lease objects written with S3 conditional writes."""

    def __init__(self, objects: ConditionalObjects, lease_s: float = LEASE_S) -> None:
        self.objects = objects
        self.lease_s = lease_s

    def _key(self, key: str) -> str:
        return f"claims/{key}.json"

    def _body(self) -> bytes:
        expires = datetime.now(UTC) + timedelta(seconds=self.lease_s)
        return json.dumps({**_holder_info(), "expires_at": expires.isoformat()}).encode()

    def acquire(self, key: str) -> _Lease | None:
        """Create the lease, or take over an expired one; None while another machine holds it."""
        etag = self.objects.create(self._key(key), self._body())
        if etag is not None:
            return _Lease(key, etag)
        current = self.objects.read(self._key(key))
        if current is None:  # released meanwhile: try once more
            etag = self.objects.create(self._key(key), self._body())
            return _Lease(key, etag) if etag is not None else None
        data, old = current
        if not _expired(data):
            return None
        etag = self.objects.replace(self._key(key), self._body(), old)  # only one taker wins
        return _Lease(key, etag) if etag is not None else None

    def holder(self, key: str) -> dict[str, Any] | None:
        current = self.objects.read(self._key(key))
        if current is None or _expired(current[0]):
            return None
        try:
            info = json.loads(current[0])
        except ValueError:
            return None
        return info if isinstance(info, dict) else None

    def renew(self, lease: _Lease) -> bool:
        etag = self.objects.replace(self._key(lease.key), self._body(), lease.etag)
        if etag is None:
            return False
        lease.etag = etag
        return True

    def release(self, lease: _Lease) -> None:
        self.objects.delete(self._key(lease.key), lease.etag)


def _expired(data: bytes) -> bool:
    try:
        expires = datetime.fromisoformat(json.loads(data)["expires_at"])
    except (ValueError, KeyError, TypeError):
        return True  # unreadable: nobody can be relying on it
    return expires < datetime.now(UTC)


class Claims:
    """Submit claims: an OS lock per key on this machine, plus a lease in an S3 store."""

    def __init__(self, directory: Path, remote: RemoteLeases | None = None) -> None:
        self.directory = Path(directory)
        self.remote = remote
        self._held: dict[str, tuple[FileLock, _Lease | None]] = {}

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.lock"

    def holder(self, key: str) -> dict[str, Any] | None:
        """Who holds ``key`` (pid, host, since), or None when it is free (or held by this object)."""
        if key in self._held:
            return None
        if locked_elsewhere(self._path(key)):
            return lock_info(self._path(key)) or {"host": socket.gethostname()}
        if self.remote is not None:
            return self.remote.holder(key)
        return None

    def try_acquire(self, key: str) -> bool:
        """Claim ``key``; False if another process (here or, on S3, on another machine) or
        another job of this runner holds it."""
        if key in self._held:
            return False
        lock = FileLock(self._path(key))
        if not lock.try_acquire():
            return False
        lease = None
        if self.remote is not None:
            try:
                lease = self.remote.acquire(key)
            except Exception:
                lock.release(unlink=True)
                raise
            if lease is None:
                lock.release(unlink=True)
                return False
        lock.write_info(_holder_info())
        self._held[key] = (lock, lease)
        return True

    def heartbeat(self) -> None:
        """Renew every held cross-machine lease (the runner calls this every :data:`RENEW_EVERY_S`)."""
        if self.remote is None:
            return
        for key, (_, lease) in list(self._held.items()):
            if lease is not None and not self.remote.renew(lease):
                log.warning("the claim on %s was taken over by another machine (its lease had expired)", key)

    def release(self, key: str) -> None:
        held = self._held.pop(key, None)
        if held is None:
            return
        lock, lease = held
        try:
            if lease is not None and self.remote is not None:
                try:
                    self.remote.release(lease)
                except Exception as exc:  # noqa: BLE001 - it expires on its own
                    log.warning("could not release the claim on %s in the store (%s); it expires by itself", key, exc)
        finally:
            lock.release(unlink=True)

    def release_all(self) -> None:
        for key in list(self._held):
            self.release(key)


__all__ = ["LEASE_S", "RENEW_EVERY_S", "Claims", "RemoteLeases"]
