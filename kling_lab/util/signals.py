"""SIGTERM handled like Ctrl-C, for the command line.

``kill <pid>``, a CI job's timeout or ``docker stop`` send SIGTERM, whose default action ends the
process on the spot: in-flight requests keep running (and billing) at fal with no row and no
summary. Inside :func:`sigterm_as_interrupt` a SIGTERM raises :class:`Terminated` in the main thread
instead, a KeyboardInterrupt, so the same path as Ctrl-C runs: in-flight requests are cancelled at
fal, the summary is printed, and the command exits 143 (128 + SIGTERM).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(KeyboardInterrupt):
    """A SIGTERM, raised where Ctrl-C would raise KeyboardInterrupt."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (elsewhere: no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["Terminated", "sigterm_as_interrupt"]
