"""1. Overhead: the same requests through a bare fal_client loop (a) and ``kling_lab.run`` (b, c).

a: submit / poll status / get result / stream the video to a file, under a semaphore.
b: ``kling_lab.run`` as a user runs it: probe + QC, journal (fsync), budget, parquet row.
c: ``kling_lab.run`` without the probe + QC hook, to separate orchestration from media analysis.
Rounds alternate the order (abc, cba, abc, ...) to cancel drift, each trial against a freshly
reset emulator; each ratio is the median over rounds of that round's ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .context import Context
from .figures import Section
from .measure import Sample, median, ratio, timed
from .workloads import bare_loop, bench_inputs, kling_lab_run

TARGET = 1.10
CONCURRENCY = 4
EMULATOR = dict(queue_delay_s=0.1, service_time_s=0.5, concurrency=CONCURRENCY, render_scale=0.25)

Variant = Callable[[list[dict[str, Any]], int, Path], Any]
VARIANTS: dict[str, Variant] = {
    "a": bare_loop,
    "b": kling_lab_run,
    "c": lambda inputs, concurrency, store: kling_lab_run(inputs, concurrency, store, analyse=False),
}


def _trial(ctx: Context, name: str, n: int, tag: str) -> Sample:
    ctx.emulator.reset(**EMULATOR)
    inputs = bench_inputs(n, tag)
    directory = ctx.fresh_dir(f"overhead-{name}")
    sample, _ = timed(lambda: VARIANTS[name](inputs, CONCURRENCY, directory), ctx.emulator)
    return sample


def run(ctx: Context, section: Section) -> None:
    n, rounds = ctx.size((24, 2), (4, 1))
    for name in VARIANTS:  # warm-up: imports, TLS, codecs (not counted)
        _trial(ctx, name, 2, f"warm-{name}")
    trials: dict[str, list[Sample]] = {name: [] for name in VARIANTS}
    for r in range(rounds):
        for name in list(VARIANTS)[:: 1 if r % 2 == 0 else -1]:
            trials[name].append(_trial(ctx, name, n, f"overhead-{r}-{name}"))
            ctx.log(f"overhead round {r + 1}/{rounds} {name}: {trials[name][-1]}")

    def per_round(num: str, den: str, value: Callable[[Sample], float]) -> float:
        return median([ratio(value(x), value(y)) for x, y in zip(trials[num], trials[den])])

    wall, cpu = (lambda s: s.wall_s), (lambda s: s.cpu_s)
    section.add("wall_ratio", "wall b/a (kling_lab.run / bare loop)", per_round("b", "a", wall), "x", TARGET)
    section.add("cpu_ratio", "CPU b/a, client process only", per_round("b", "a", cpu), "x", TARGET)
    section.add(
        "cpu_ratio_with_emulator",
        "CPU b/a, client + emulator",
        per_round("b", "a", lambda s: s.total_cpu_s),
        "x",
        TARGET,
    )
    section.add(
        "wall_ratio_no_media", "wall c/a (kling_lab.run without probe+QC)", per_round("c", "a", wall), "x", TARGET
    )
    section.add("cpu_ratio_no_media", "CPU c/a, client process only", per_round("c", "a", cpu), "x", TARGET)
    for name in VARIANTS:
        section.add(f"{name}_wall_s", f"{name}: wall, median", median([s.wall_s for s in trials[name]]), "s")
    for name in VARIANTS:
        section.add(
            f"{name}_cpu_ms_per_request",
            f"{name}: client CPU per request",
            1000 * median([s.cpu_s for s in trials[name]]) / n,
            "ms",
        )
    section.add(
        "emulator_cpu_ms_per_request",
        "emulator CPU per request (a)",
        1000 * median([s.emulator_cpu_s for s in trials["a"]]) / n,
        "ms",
    )
    section.notes += [
        f"{n} requests, concurrency {CONCURRENCY}, {rounds} rounds (abc, cba); emulator out of process: "
        f"queue {EMULATOR['queue_delay_s']} s, service {EMULATOR['service_time_s']} s, "
        f"320x180 5 s clips; status polled every 0.1 s by all three",
        "b does what a does not: journal fsync x3/request, budget, sha256 + size + decoded-frame check, "
        "content-addressed copy, PyAV probe + QC (decodes every frame), its rows written to the parquet log in batches (one part file + fsync per 0.5 s flush)",
    ]
