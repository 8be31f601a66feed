"""Is a process alive? (for journal owners and claim holders on this machine)."""

from __future__ import annotations

import os


def pid_alive(pid: int | None) -> bool:
    """True when a process with ``pid`` exists on this machine (ours or another user's)."""
    if not pid or pid < 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


__all__ = ["pid_alive"]
