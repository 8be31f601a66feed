"""Run a coroutine to completion from synchronous code — a script or a Jupyter cell.

Jupyter kernels already run an event loop in the main thread, so the coroutine runs on
its own loop in a worker thread while the caller waits. Ctrl-C (or the notebook's stop
button) in the caller cancels the coroutine, waits for its cleanup (e.g. cancelling
in-flight requests at fal), then re-raises KeyboardInterrupt.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")


def run_sync(make_coro: Callable[[], Awaitable[T]], *, name: str = "kling-lab") -> T:
    """Run ``make_coro()`` on a fresh event loop in a worker thread and return its result."""
    state: dict[str, Any] = {}
    ready = threading.Event()
    finished = threading.Event()  # not thread.join(): an interrupted join can mark a live thread dead

    def target() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        state["loop"] = loop
        state["task"] = loop.create_task(make_coro())  # type: ignore[arg-type]
        ready.set()
        try:
            state["value"] = loop.run_until_complete(state["task"])
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            state["error"] = exc
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                finished.set()

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    ready.wait()
    try:
        while not finished.wait(0.1):
            pass
    except KeyboardInterrupt:
        state["loop"].call_soon_threadsafe(state["task"].cancel)
        while not finished.is_set():  # a second Ctrl-C while cleaning up is ignored: cleanup protects money
            try:
                finished.wait(0.1)
            except KeyboardInterrupt:
                continue
        raise
    if "error" in state:
        raise state["error"]
    return state["value"]
