"""Claims: one process at a time submits a given request on this machine.

Two notebooks (or a notebook and a terminal) running the same sweep into the same store
would otherwise both submit and both pay. Before submitting, a runner claims the request's
key with an exclusive file create (``O_CREAT | O_EXCL``, atomic on local filesystems); the
claim names its process, and a claim whose process is gone is stale and taken over. A runner
that finds a live claim waits for it, then looks at the store again (the other process's
result is then a cache hit). Claims live beside the journal, on this machine's disk, so they
do not coordinate different machines sharing a remote store.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from kling_lab.util.processes import pid_alive


class Claims:
    """Exclusive, process-owned claim files under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._held: set[str] = set()

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.claim"

    def holder(self, key: str) -> int | None:
        """The pid of the live process holding ``key`` (None if free or stale)."""
        try:
            info = json.loads(self._path(key).read_text())
        except (FileNotFoundError, ValueError):
            return None
        if info.get("host") != socket.gethostname():
            return None
        pid = int(info.get("pid", 0))
        return pid if pid and pid_alive(pid) else None

    def try_acquire(self, key: str) -> bool:
        """Claim ``key``; False if another live process, or another job of this one, holds it."""
        if key in self._held:
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        # Write the claim's content first, then link it into place: link() fails if the name
        # exists, so a claim is never seen half-written (which would look stale).
        tmp = self.directory / f".{key}.{os.getpid()}.{id(self)}.tmp"
        tmp.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        try:
            for _ in range(2):
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    if self.holder(key) is not None:
                        return False
                    path.unlink(missing_ok=True)  # stale: its process is gone
                    continue
                self._held.add(key)
                return True
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def release(self, key: str) -> None:
        if key in self._held:
            self._held.discard(key)
            self._path(key).unlink(missing_ok=True)

    def release_all(self) -> None:
        for key in list(self._held):
            self.release(key)
