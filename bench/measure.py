"""Timing one trial (wall time, this process's CPU time, the emulator's CPU time), medians, peak RSS."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")


class CpuClock(Protocol):
    def cpu_s(self) -> float: ...


@dataclass(frozen=True)
class Sample:
    """One timed trial."""

    wall_s: float
    cpu_s: float  # this (client) process, all threads
    emulator_cpu_s: float  # the emulator process over the same interval

    @property
    def total_cpu_s(self) -> float:
        return self.cpu_s + self.emulator_cpu_s

    def __str__(self) -> str:
        return f"wall {self.wall_s:.2f} s, CPU {self.cpu_s:.2f} s (+ emulator {self.emulator_cpu_s:.2f} s)"


def timed(fn: Callable[[], T], emulator: CpuClock | None = None) -> tuple[Sample, T]:
    """Run ``fn`` once; return its Sample and its value."""
    e0 = emulator.cpu_s() if emulator else 0.0
    c0, w0 = time.process_time(), time.perf_counter()
    value = fn()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    e1 = emulator.cpu_s() if emulator else 0.0
    return Sample(wall, cpu, e1 - e0), value


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def median_sample(samples: Sequence[Sample]) -> Sample:
    """Field-wise median of trials."""
    return Sample(
        median([s.wall_s for s in samples]),
        median([s.cpu_s for s in samples]),
        median([s.emulator_cpu_s for s in samples]),
    )


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("inf")


def peak_rss_mb() -> float:
    """Peak resident set size of this process image, in MB.

    Linux: ``VmHWM`` from /proc/self/status (``ru_maxrss`` would also count the parent's RSS
    at fork time, which Linux carries across exec). Elsewhere: ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
