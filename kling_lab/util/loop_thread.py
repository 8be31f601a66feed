"""An asyncio event loop in a background thread, and ``run_sync`` for synchronous callers.

Two uses, one mechanism:

- :class:`LoopThread` keeps a loop running in a daemon thread for a server that lives beside the
  caller (the emulator, the views' video server): ``call(coro)`` runs a coroutine there and waits.
- :func:`run_sync` runs one coroutine to completion from a script or a Jupyter cell. Jupyter
  kernels already run an event loop in the main thread, so the coroutine runs on a loop of its
  own in a worker thread while the caller waits. Ctrl-C (or the notebook's stop button) cancels
  the coroutine, waits for its cleanup (e.g. cancelling in-flight requests at fal), then re-raises
  KeyboardInterrupt.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """An event loop running forever in a daemon thread until :meth:`stop`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError(f"{self.name}: the loop thread is not running")
        return self._loop

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self) -> LoopThread:
        """Start the thread (no-op when it runs)."""
        if self._loop is not None:
            return self
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            try:
                loop.run_forever()
            finally:
                try:
                    loop.run_until_complete(loop.shutdown_asyncgens())
                finally:
                    loop.close()

        self._thread = threading.Thread(target=main, name=self.name, daemon=True)
        self._thread.start()
        started.wait()
        self._loop = loop
        return self

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; its future can be waited on from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and return its result (from another thread)."""
        return self.submit(coro).result(timeout)

    def stop(self, cleanup: Coroutine[Any, Any, Any] | None = None, timeout: float = 30.0) -> None:
        """Run ``cleanup`` on the loop (if given), stop it and wait for the thread to end."""
        loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            if cleanup is not None:
                cleanup.close()
            return
        try:
            if cleanup is not None:
                asyncio.run_coroutine_threadsafe(cleanup, loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)


def run_sync(make_coro: Callable[[], Awaitable[T]], *, name: str = "kling-lab") -> T:
    """Run ``make_coro()`` on a fresh event loop in a worker thread and return its result."""
    worker = LoopThread(name).start()

    tasks: list[asyncio.Task[Any]] = []  # the task itself: cancelling it lets its cleanup run to the end

    async def tracked() -> T:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        return await make_coro()

    future = worker.submit(tracked())
    try:
        try:
            while True:  # not future.result(): a blocking wait would not see Ctrl-C promptly
                try:
                    return future.result(timeout=0.1)
                except concurrent.futures.TimeoutError:
                    continue
        except KeyboardInterrupt:
            if tasks:
                worker.loop.call_soon_threadsafe(tasks[0].cancel)
            else:
                future.cancel()
            while not future.done():  # a second Ctrl-C while cleaning up is ignored: cleanup protects money
                try:
                    concurrent.futures.wait([future], timeout=0.1)
                except KeyboardInterrupt:
                    continue
            raise
    finally:
        worker.stop()


__all__ = ["LoopThread", "run_sync"]
