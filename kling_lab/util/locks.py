"""OS file locks (``fcntl.flock``): held by an open file, released by the kernel when the process dies.

A lock file's *existence* means nothing; only the lock on it does. So a process killed with
SIGKILL, or a reused PID, can never leave a lock behind: the kernel drops ``flock`` locks with
the last file descriptor. ``flock`` locks belong to an open file description, so two opens of
the same file conflict even inside one process. Local filesystems only (POSIX; on NFS ``flock``
may be emulated or local to one machine).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any


class FileLock:
    """An exclusive (or shared) lock on one file, taken without waiting."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self, *, shared: bool = False) -> bool:
        """Lock the file (creating it) if nobody holds a conflicting lock; never waits.

        A holder may unlink the file while releasing it (:meth:`release` with ``unlink``): a lock
        won on such an unlinked file is worthless, so the lock is kept only if the path still
        names the locked file."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(16):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)  # unlinked by its last holder meanwhile: lock the new file instead
        return False

    def write_info(self, info: dict[str, Any]) -> None:
        """Replace the lock file's content (who holds it, for the messages of those who wait)."""
        data = json.dumps(info, separators=(",", ":")).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise RuntimeError(f"{self.path} is not locked by this process")
        return self._fd

    def __del__(self) -> None:  # a lock nobody can reach any more is dropped, like an open file
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def release(self, *, unlink: bool = False) -> None:
        """Drop the lock (and, with ``unlink``, the file first, while still holding it)."""
        if self._fd is None:
            return
        try:
            if unlink:
                self.path.unlink(missing_ok=True)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None


def locked_elsewhere(path: Path) -> bool:
    """Does an open file (another process, or another open in this one) hold an exclusive lock on ``path``?

    A missing file is unlocked. The probe takes a shared lock for an instant and drops it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, IsADirectoryError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's own lock
    return False


def read_if_locked_elsewhere(path: Path) -> bytes | None:
    """The content of ``path`` if another open file holds an exclusive lock on it, else None.

    Probe and read go through one open file, so a holder that unlinks the file meanwhile (its
    :meth:`FileLock.release` with ``unlink``) cannot make the read fail: the open file keeps the content."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, IsADirectoryError):
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        return None
    finally:
        os.close(fd)  # closing drops the probe's own lock


def lock_info(path: Path) -> dict[str, Any]:
    """What a holder wrote into its lock file with :meth:`FileLock.write_info` ({} if nothing readable)."""
    try:
        info = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


__all__ = ["FileLock", "lock_info", "locked_elsewhere", "read_if_locked_elsewhere"]
