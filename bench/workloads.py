"""The same requests run two ways: (a) the bare ``fal_client`` loop, (b) ``kling_lab.run``.

Both send identical JSON inputs to the same emulator at the same concurrency and poll
status (with logs) at the emulator backend's interval. Beyond what (a) does (see
:mod:`bench.bare`), (b) journals (fsync) every request id, reserves budget, checks the
download (sha256, size, a decoded frame), stores the video by content, probes it,
computes QC metrics and appends the rows to the parquet run log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kling_lab.backends.emulator.backend import PLACEHOLDER_KEY, EmulatorBackend
from kling_lab.request import ENDPOINT, KlingRequest

from . import bare

BARE_OPTIONS: dict[str, Any] = {"endpoint": ENDPOINT, "key": PLACEHOLDER_KEY, "poll_s": EmulatorBackend.poll_interval_s}


def bench_inputs(n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` distinct, valid request inputs (5 s, 16:9), as kling_lab would send them."""
    return [
        KlingRequest.parse(
            {
                "prompt": f"bench {tag} #{i}: a red fox trotting through fresh snow",
                "duration": "5",
                "aspect_ratio": "16:9",
                "cfg_scale": 0.5,
            }
        ).arguments()
        for i in range(n)
    ]


def bare_loop(inputs: list[dict[str, Any]], concurrency: int, dest: Path) -> int:
    """(a): the bare fal_client loop against the emulator."""
    return bare.bare_loop(inputs, concurrency, dest, **BARE_OPTIONS)


def kling_lab_run(
    inputs: list[dict[str, Any]], concurrency: int, store: Path, *, analyse: bool = True, name: str = "bench"
) -> Any:
    """(b): ``kling_lab.run`` with default options (probe + QC, journal, parquet log), or without
    the probe + QC media hook when ``analyse`` is False. No progress bar."""
    import kling_lab

    sweep = kling_lab.Sweep.from_list(inputs, name=name)
    extra = {} if analyse else {"media_hook": None}
    result = kling_lab.run(sweep, store=store, concurrency=concurrency, progress=False, **extra)
    if result.count("ok") + result.cache_hits != len(inputs):
        raise RuntimeError(f"kling_lab.run: {result.summary()}")
    return result
