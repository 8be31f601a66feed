"""3. Scale: 1,000 zero-latency requests: throughput, CPU and peak memory of kling_lab itself.

The emulator (its own process) has no queue delay or service time and renders tiny clips,
so the run measures orchestration: HTTP calls, journal, download checks, probe + QC of
tiny clips, parquet rows, compaction. Each side runs in a fresh child process
(``bench.child``), so its peak RSS is that of the run plus its imports, independent of
what the bench process did before; the bare fal_client loop on the same requests gives
the reference throughput and memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .context import Context
from .figures import Section
from .measure import ratio
from .workloads import BARE_OPTIONS, bench_inputs

TARGET_RSS_MB = 300.0
CHILD_TIMEOUT_S = 600


def _child(ctx: Context, name: str, n: int, concurrency: int) -> dict[str, float]:
    """Run workload ``name`` in ``python -m bench.child`` against the freshly reset emulator."""
    spec = {
        "workload": name,
        "inputs": bench_inputs(n, f"scale-{name}"),
        "concurrency": concurrency,
        "dir": str(ctx.fresh_dir(f"scale-{name}")),
        "bare_options": BARE_OPTIONS,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.child"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=CHILD_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.child {name} failed: {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    ctx.log(f"scale {name}: {figures}")
    return figures


def run(ctx: Context, section: Section) -> None:
    n, concurrency = ctx.size((1000, 32), (20, 8))
    config = dict(queue_delay_s=0.0, service_time_s=0.0, concurrency=concurrency, render_scale=0.1, fps=8)
    ctx.emulator.reset(**config)
    b = _child(ctx, "kling_lab", n, concurrency)
    ctx.emulator.reset(**config)
    a = _child(ctx, "bare", n, concurrency)
    section.add(
        "peak_rss_mb", "kling_lab: peak RSS of the process (with imports)", b["peak_rss_mb"], "MB", TARGET_RSS_MB
    )
    section.add("bare_peak_rss_mb", "bare loop: peak RSS of the process (fal_client + httpx)", a["peak_rss_mb"], "MB")
    section.add("requests_per_s", "kling_lab requests/s", n / b["wall_s"], "req/s")
    section.add("bare_requests_per_s", "bare loop requests/s", n / a["wall_s"], "req/s")
    section.add("wall_ratio", "wall kling_lab / bare loop", ratio(b["wall_s"], a["wall_s"]), "x")
    section.add("cpu_ratio", "CPU kling_lab / bare loop", ratio(b["cpu_s"], a["cpu_s"]), "x")
    section.add("wall_s", "kling_lab wall", b["wall_s"], "s")
    section.add("cpu_s", "kling_lab CPU", b["cpu_s"], "s")
    section.add("cpu_ms_per_request", "kling_lab CPU per request", 1000 * b["cpu_s"] / n, "ms")
    section.add("bare_cpu_ms_per_request", "bare loop CPU per request", 1000 * a["cpu_s"] / n, "ms")
    section.notes.append(
        f"{n} requests at concurrency {concurrency}, each side in a fresh process; emulator in "
        "its own process (queue 0 s, service 0 s, 128x72 8 fps 5 s clips); peak RSS = the child's "
        "VmHWM, including ~160 MB of imports for kling_lab (pyarrow, pandas, PyAV, fal_client)"
    )
