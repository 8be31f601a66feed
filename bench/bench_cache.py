"""5. Cache and resume: a repeated sweep submits nothing; a SIGKILLed run resumes without paying twice.

Repeat: the same sweep twice into one store; the second run's submissions are read
from the emulator's counters (``GET /_emulator/stats``) and must be 0.
Resume: ``kling-lab run`` in a child process is killed (SIGKILL) while requests are in
flight; running the same sweep again must re-attach to the journaled requests: no
fingerprint submitted twice, no video downloaded twice, one ok row per request.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import yaml

from kling_lab.runner.journal import Journal
from kling_lab.store.run_store import load_runs

from .context import Context
from .figures import Section
from .measure import ratio, timed
from .workloads import bench_inputs, kling_lab_run

KILL_TIMEOUT_S = 60.0


def _repeat(ctx: Context, section: Section) -> None:
    n, concurrency, service_s = ctx.size((24, 4, 0.5), (4, 4, 0.2))
    ctx.emulator.reset(queue_delay_s=0.1, service_time_s=service_s, concurrency=concurrency, render_scale=0.1, fps=8)
    store, inputs = ctx.fresh_dir("cache"), bench_inputs(n, "cache")
    first, _ = timed(lambda: kling_lab_run(inputs, concurrency, store))
    before = ctx.emulator.stats()["submissions"]
    second, again = timed(lambda: kling_lab_run(inputs, concurrency, store))
    section.add(
        "repeat_submissions",
        f"repeated sweep ({n} requests): submissions",
        ctx.emulator.stats()["submissions"] - before,
        "requests",
        0,
    )
    section.add(
        "repeat_cache_hits", "repeated sweep: cache hits", again.cache_hits, "requests", n, higher_is_better=True
    )
    section.add("repeat_wall_ratio", "repeated sweep wall / first run wall", ratio(second.wall_s, first.wall_s), "x")
    section.add("first_wall_s", "first run wall", first.wall_s, "s")


def _wait_until_in_flight(ctx: Context, journal: Journal, process: subprocess.Popen[Any], count: int) -> int:
    """Wait until ``count`` requests are submitted and journaled (none submitted but not yet journaled)."""
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        journaled = len(journal.all_request_ids())
        if journaled >= count and ctx.emulator.stats()["submissions"] == journaled:
            return journaled
        time.sleep(0.02)
    raise RuntimeError("the run to kill did not get requests in flight in time")


def _resume(ctx: Context, section: Section) -> None:
    n, service_s = ctx.size((8, 1.0), (4, 0.5))
    concurrency = n // 2
    ctx.emulator.reset(queue_delay_s=0.0, service_time_s=service_s, concurrency=concurrency, render_scale=0.1, fps=8)
    store, inputs = ctx.fresh_dir("resume"), bench_inputs(n, "resume")
    sweep_file = store.parent / f"{store.name}.yaml"
    sweep_file.write_text(yaml.safe_dump({"name": "resume", "requests": inputs}))
    command = [
        sys.executable,
        "-m",
        "kling_lab.cli",
        "run",
        str(sweep_file),
        "--store",
        str(store),
        "--concurrency",
        str(concurrency),
        "--no-progress",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        in_flight = _wait_until_in_flight(ctx, Journal(store / "journal"), process, concurrency)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    resumed, _ = timed(lambda: kling_lab_run(inputs, concurrency, store))
    stats, df = ctx.emulator.stats(), load_runs(store)
    per_fingerprint = stats["submissions_by_fingerprint"].values()
    section.add("killed_in_flight", "SIGKILL with requests in flight", in_flight, "requests")
    section.add(
        "resume_duplicate_submissions",
        "after resume: fingerprints submitted twice",
        sum(v - 1 for v in per_fingerprint),
        "requests",
        0,
    )
    section.add(
        "resume_duplicate_downloads",
        "after resume: videos downloaded twice",
        sum(1 for v in stats["downloads"].values() if v > 1),
        "requests",
        0,
    )
    section.add(
        "resume_ok_rows",
        f"after resume: ok rows (of {n})",
        int((df["status"] == "ok").sum()),
        "rows",
        n,
        higher_is_better=True,
    )
    section.add("resume_wall_s", "resume run wall", resumed.wall_s, "s")


def run(ctx: Context, section: Section) -> None:
    _repeat(ctx, section)
    _resume(ctx, section)
    section.notes.append("submissions, downloads and duplicates are the emulator's own counters")
