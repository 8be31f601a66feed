"""6. QC: ``bench_qc.run(quick)`` (CPU of ``compute_qc`` on a 10 s 720p clip, one core) as a section."""

from __future__ import annotations

from . import bench_qc
from .context import Context
from .figures import Section


def run(ctx: Context, section: Section) -> None:
    figures = bench_qc.run(ctx.quick)
    main, high = "qc_10s_720p", "qc_10s_720p_8mbps"
    section.add("cpu_s", "compute_qc CPU, 4 Mbit/s clip (median)", figures[f"{main}_cpu_s"], "s", bench_qc.TARGET_CPU_S)
    section.add("cpu_max_s", "compute_qc CPU, 4 Mbit/s clip (max)", figures[f"{main}_cpu_max_s"], "s")
    section.add("decode_only_cpu_s", "decode only, 4 Mbit/s clip", figures[f"{main}_decode_only_cpu_s"], "s")
    section.add("wall_s", "compute_qc wall, 4 Mbit/s clip", figures[f"{main}_wall_s"], "s")
    if f"{high}_cpu_s" in figures:
        section.add("cpu_8mbps_s", "compute_qc CPU, 8 Mbit/s clip (median)", figures[f"{high}_cpu_s"], "s")
    section.notes.append(
        f"{figures['runs']:.0f} timed run(s) after a warm-up, pinned to one core: "
        f"{bool(figures['pinned_one_core'])}; bench_qc.py's target is < {bench_qc.TARGET_CPU_S} s"
    )
