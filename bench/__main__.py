"""``python -m bench [--quick] [--out PATH] [--only NAME ...]``.

Starts the fal emulator in its own process, runs the benchmarks (each figure measured
side by side within this run), prints the table and writes the JSON file. Exit status:
0 when every benchmark ran (whatever its PASS/MISS), 1 when one raised.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .context import Context
from .emulator import start_emulator
from .figures import Section, format_table, write_json
from .sections import SECTIONS, runner

DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a few requests): a CI smoke test")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(SECTIONS),
        metavar="NAME",
        help=f"run only these benchmarks: {', '.join(SECTIONS)}",
    )
    return parser.parse_args(argv)


def run_section(ctx: Context, name: str) -> Section:
    """Run one benchmark; an exception is recorded in the section, not raised."""
    section = Section(name, SECTIONS[name][0], number=list(SECTIONS).index(name) + 1)
    ctx.log(f"{name}: start")
    started = time.perf_counter()
    try:
        runner(name)(ctx, section)
    except Exception as exc:
        traceback.print_exc()
        section.error = f"{type(exc).__name__}: {exc}"
    section.seconds = time.perf_counter() - started
    ctx.log(f"{name}: done in {section.seconds:.1f} s")
    return section


def meta(quick: bool, started: float, load_before: tuple[float, ...]) -> dict[str, Any]:
    from kling_lab import __version__

    return {
        "quick": quick,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "total_s": round(time.perf_counter() - started, 1),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kling_lab_version": __version__,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started, load_before = time.perf_counter(), os.getloadavg()
    emulator = start_emulator()  # before anything imports fal_client
    try:
        with tempfile.TemporaryDirectory(prefix="kling-lab-bench-") as tmp:
            ctx = Context(emulator, Path(tmp), quick=args.quick)
            sections = [run_section(ctx, name) for name in SECTIONS if not args.only or name in args.only]
    finally:
        emulator.stop()
    print(format_table(sections))
    write_json(args.out, sections, meta(args.quick, started, load_before))
    print(
        f"\nwritten {args.out} (total {time.perf_counter() - started:.0f} s, "
        f"load average before/after {load_before[0]:.1f}/{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    return 1 if any(s.error for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
