"""``kling-lab report``: write the static HTML gallery of a sweep (default: the most recent one)."""

from __future__ import annotations

import argparse
from typing import Any

from kling_lab.cli.args import add_store


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to ``kling-lab``'s subparsers."""
    p = subparsers.add_parser("report", help="write a static HTML gallery of a sweep (opens from disk, no server)")
    add_store(p)
    p.add_argument("--sweep", metavar="ID", help="sweep_id to show (default: the most recent sweep)")
    p.add_argument("-o", "--output", metavar="FILE", default="report.html", help="report file (default report.html)")
    p.add_argument("--rows", default="cfg_scale", metavar="COL", help="run-log column of the grid rows")
    p.add_argument("--cols", default="aspect_ratio", metavar="COL", help="run-log column of the grid columns")
    p.add_argument("--copy-videos", action="store_true", help="copy the videos beside the report (portable folder)")
    p.add_argument("--title", help="page title (default: from the sweep name)")
    p.set_defaults(func=cmd_report)
    return p


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report; exit 0, or 2 (with a message) when the store or sweep has no runs."""
    import sys

    from kling_lab.store.run_store import RunStore
    from kling_lab.store.selection import pick_sweep
    from kling_lab.views.report import report

    store = RunStore(args.store)
    runs = store.load()
    if runs.empty:
        print(f"kling-lab: error: no runs in {store.root}", file=sys.stderr)
        return 2
    selected = pick_sweep(runs, args.sweep)  # InvalidInput (exit 2) names the known sweeps
    sweep = selected["sweep_id"].iloc[0]
    path = report(
        selected,
        args.output,
        rows=args.rows or None,
        cols=args.cols or None,
        copy_videos=args.copy_videos,
        title=args.title,
        store=store,
    )
    print(f"{path}: {len(selected)} runs of sweep {sweep}")
    return 0
