"""The baseline: a minimal hand-written ``fal_client`` loop, as a careful user would write it.

Submit, poll status (with logs) every ``poll_s``, get the result, stream the video to a
file with httpx, under an ``asyncio.Semaphore`` released before the download (as
kling_lab does). It imports nothing from kling_lab, so a process running only this pays
only fal_client's and httpx's memory.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx


async def _status(handle: Any, poll_s: float, attempts: int = 5) -> Any:
    """``handle.status(with_logs=True)``, retrying a 5xx (as anyone polling fal for long must)."""
    from fal_client.client import FalClientHTTPError

    for attempt in range(1, attempts + 1):
        try:
            return await handle.status(with_logs=True)
        except FalClientHTTPError as exc:
            if exc.status_code < 500 or attempt == attempts:
                raise
            await asyncio.sleep(poll_s)


async def bare_loop_async(
    inputs: list[dict[str, Any]], concurrency: int, dest: Path, *, endpoint: str, key: str, poll_s: float
) -> int:
    """Run ``inputs`` on ``endpoint``; return the number of videos downloaded into ``dest``."""
    import fal_client

    client = fal_client.AsyncClient(key=key, default_timeout=60.0)
    slots = asyncio.Semaphore(concurrency)
    dest.mkdir(parents=True, exist_ok=True)

    async def one(index: int, arguments: dict[str, Any], http: httpx.AsyncClient) -> None:
        async with slots:
            handle = await client.submit(endpoint, arguments=arguments)
            while not isinstance(await _status(handle, poll_s), fal_client.Completed):
                await asyncio.sleep(poll_s)
            result = await handle.get()
        async with http.stream("GET", result["video"]["url"]) as response:
            response.raise_for_status()
            with open(dest / f"{index}.mp4", "wb") as fh:
                async for chunk in response.aiter_raw(1 << 20):
                    fh.write(chunk)

    try:
        async with httpx.AsyncClient(follow_redirects=True) as http:
            await asyncio.gather(*(one(i, args, http) for i, args in enumerate(inputs)))
    finally:
        if "_client" in vars(client):  # fal_client's own httpx client, created on first use
            await (await client._client).aclose()
    return sum(1 for p in dest.glob("*.mp4") if p.stat().st_size > 0)


def bare_loop(
    inputs: list[dict[str, Any]], concurrency: int, dest: Path, *, endpoint: str, key: str, poll_s: float
) -> int:
    """Sync form of :func:`bare_loop_async` (its own event loop, like a script's ``asyncio.run``)."""
    done = asyncio.run(bare_loop_async(inputs, concurrency, dest, endpoint=endpoint, key=key, poll_s=poll_s))
    if done != len(inputs):
        raise RuntimeError(f"bare loop: {done} of {len(inputs)} videos downloaded")
    return done
