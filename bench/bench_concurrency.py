"""2. Concurrency: 64 requests of 2 s service time at concurrency 16 vs. the ideal ceil(64/16)·2 s.

The emulator runs every job at once (no queue delay, concurrency above 16) and renders
tiny clips well within the service time, so only the client's concurrency sets the pace.
The bare fal_client loop runs the same requests for comparison (its ratio is fal_client's
own floor: the polling interval and the HTTP round trips).
"""

from __future__ import annotations

import math

from .context import Context
from .figures import Section
from .measure import ratio, timed
from .workloads import bare_loop, bench_inputs, kling_lab_run

TARGET = 1.15


def run(ctx: Context, section: Section) -> None:
    n, concurrency, service_s = ctx.size((64, 16, 2.0), (8, 4, 0.5))
    config = dict(
        queue_delay_s=0.0, service_time_s=service_s, concurrency=max(16, 2 * concurrency), render_scale=0.1, fps=8
    )
    ideal = math.ceil(n / concurrency) * service_s
    ctx.emulator.reset(**config)
    b, _ = timed(
        lambda: kling_lab_run(bench_inputs(n, "concurrency-b"), concurrency, ctx.fresh_dir("conc-b")), ctx.emulator
    )
    ctx.emulator.reset(**config)
    a, _ = timed(
        lambda: bare_loop(bench_inputs(n, "concurrency-a"), concurrency, ctx.fresh_dir("conc-a")), ctx.emulator
    )
    section.add("wall_over_ideal", f"kling_lab wall / ideal ({ideal:g} s)", ratio(b.wall_s, ideal), "x", TARGET)
    section.add("bare_wall_over_ideal", "bare loop wall / ideal", ratio(a.wall_s, ideal), "x")
    section.add("wall_ratio", "wall kling_lab / bare loop", ratio(b.wall_s, a.wall_s), "x")
    section.add("kling_lab_wall_s", "kling_lab wall", b.wall_s, "s")
    section.add("ideal_s", "ideal: ceil(n / concurrency) x service time", ideal, "s")
    section.notes.append(
        f"{n} requests, concurrency {concurrency}, service {service_s:g} s, queue delay 0, "
        f"emulator concurrency {config['concurrency']}, 128x72 8 fps clips; kling_lab with probe + QC"
    )
