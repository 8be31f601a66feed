"""Benchmark ``compute_qc`` on a 10 s 1280×720 24 fps H.264 clip (the largest Kling 2.0 Master output).

Run ``python bench/bench_qc.py`` (``--quick``: one timed run, main clip only); a harness calls ``run()``.
The clip is rendered with PyAV into a temp dir: a detailed texture panning under a moving bright disc,
with temporal grain, libx264 at a fixed average bitrate. Nearly all of compute_qc's time is H.264
decoding, which grows with the bitrate, so the figure is given at 4 Mbit/s (main) and at 8 Mbit/s.
Timing is pinned to one CPU when the OS allows it; CPU time is ``time.process_time`` (all threads).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from kling_lab.media.qc import compute_qc

TARGET_CPU_S = 1.5
WIDTH, HEIGHT, FPS, SECONDS, SPEED, GRAIN = 1280, 720, 24, 10, 4, 8
MAIN_MBPS, HIGH_MBPS, RADIUS = 4, 8, 80


def render_clip(path: Path, mbps: float = MAIN_MBPS) -> Path:
    """Write the benchmark clip at about ``mbps`` Mbit/s: a grainy texture panning ``SPEED`` px per frame, a moving disc."""
    n = FPS * SECONDS
    rng = np.random.default_rng(0)
    wide_w = WIDTH + n * SPEED
    coarse = rng.integers(0, 256, (HEIGHT // 48 + 1, wide_w // 48 + 1, 3), dtype=np.uint8)
    scene = np.kron(coarse, np.ones((48, 48, 1), dtype=np.uint8))[:HEIGHT, :wide_w].astype(np.int16)
    scene += rng.integers(-12, 13, scene.shape, dtype=np.int16)  # fine detail, so the bitrate is realistic
    scene = np.clip(scene, 0, 255).astype(np.uint8)
    grain = rng.integers(-GRAIN, GRAIN + 1, (7, HEIGHT, WIDTH, 1), dtype=np.int16)  # film grain, cycled
    dy, dx = np.ogrid[-RADIUS : RADIUS + 1, -RADIUS : RADIUS + 1]
    disc = dx**2 + dy**2 <= RADIUS**2
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = int(mbps * 1e6)
        stream.options = {"preset": "veryfast"}
        for i in range(n):
            frame = np.clip(scene[:, i * SPEED : i * SPEED + WIDTH] + grain[i % len(grain)], 0, 255).astype(np.uint8)
            cx, cy = round(100 + 1080 * i / n), round(360 + 200 * np.sin(i / 20))  # stays inside the frame
            frame[cy - RADIUS : cy + RADIUS + 1, cx - RADIUS : cx + RADIUS + 1][disc] = 240
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


@contextmanager
def one_core() -> Iterator[bool]:
    """Pin this process to one of its allowed CPUs for the block; yields whether pinning worked."""
    getter = getattr(os, "sched_getaffinity", None)
    setter = getattr(os, "sched_setaffinity", None)
    if getter is None or setter is None:
        yield False
        return
    allowed = getter(0)
    try:
        setter(0, {min(allowed)})
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        setter(0, allowed)


def cpu_times(fn: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """CPU and wall seconds of ``runs`` calls of ``fn`` after one warm-up call."""
    fn()  # warm-up: imports, FFmpeg codec init, page cache
    cpu, wall = [], []
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return cpu, wall


def decode_only(clip: Path) -> None:
    """Decode every frame and do nothing else: the floor under compute_qc's time."""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass


def run(quick: bool = False) -> dict[str, float]:
    """Render the clips, time ``compute_qc`` (1 run if ``quick`` else 3, median), return the figures.

    Keys per clip ``K`` (``qc_10s_720p`` at 4 Mbit/s; also ``qc_10s_720p_8mbps`` unless quick):
    ``K_cpu_s``, ``K_cpu_max_s``, ``K_wall_s``, ``K_decode_only_cpu_s``, ``K_mbps``.
    """
    runs = 1 if quick else 3
    cases = [("qc_10s_720p", MAIN_MBPS)] + ([] if quick else [("qc_10s_720p_8mbps", HIGH_MBPS)])
    figures: dict[str, float] = {"runs": float(runs)}
    with tempfile.TemporaryDirectory(prefix="bench_qc_") as tmp:
        rendered = {key: render_clip(Path(tmp) / f"{key}.mp4", mbps) for key, mbps in cases}  # on all cores
        with one_core() as pinned:
            figures["pinned_one_core"] = float(pinned)
            for key, clip in rendered.items():
                cpu, wall = cpu_times(lambda: compute_qc(clip), runs)
                floor, _ = cpu_times(lambda: decode_only(clip), runs)
                figures[f"{key}_cpu_s"] = statistics.median(cpu)
                figures[f"{key}_cpu_max_s"] = max(cpu)
                figures[f"{key}_wall_s"] = statistics.median(wall)
                figures[f"{key}_decode_only_cpu_s"] = statistics.median(floor)
                figures[f"{key}_mbps"] = clip.stat().st_size * 8 / SECONDS / 1e6
    return figures


def main() -> None:
    figures = run(quick="--quick" in sys.argv[1:])
    for key in ("qc_10s_720p", "qc_10s_720p_8mbps"):
        if f"{key}_cpu_s" in figures:
            print(
                f"{key}_cpu_s={figures[f'{key}_cpu_s']:.2f} (target < {TARGET_CPU_S}) "
                f"wall_s={figures[f'{key}_wall_s']:.2f} cpu_max_s={figures[f'{key}_cpu_max_s']:.2f} "
                f"decode_only_cpu_s={figures[f'{key}_decode_only_cpu_s']:.2f} "
                f"clip={figures[f'{key}_mbps']:.1f} Mbit/s"
            )
    print(f"runs={figures['runs']:.0f} pinned_one_core={bool(figures['pinned_one_core'])}")


if __name__ == "__main__":
    main()
