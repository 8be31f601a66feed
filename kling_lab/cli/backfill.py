"""``kling-lab backfill``: compute missing probe/QC columns of a store's ok runs (see :mod:`kling_lab.backfill`)."""

from __future__ import annotations

import argparse
from typing import Any

from kling_lab.cli.args import add_store

__all__ = ["add_parser", "cmd_backfill"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``backfill`` subcommand to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    p = subparsers.add_parser("backfill", help="compute missing probe/QC columns of ok runs whose video is stored")
    add_store(p)
    p.add_argument(
        "--force", action="store_true", help="recompute every ok run's probe/QC columns and overwrite those that differ"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_backfill)
    return p


def cmd_backfill(args: argparse.Namespace) -> int:
    """Run the backfill and say how many rows it filled; exit status 0."""
    from kling_lab.store.backfill import backfill
    from kling_lab.store.run_store import RunStore

    store = RunStore(args.store)
    filled = backfill(store, force=args.force, progress=not args.no_progress)
    print(f"backfill: {filled} row{'' if filled == 1 else 's'} updated with probe/QC columns in {store.location}")
    return 0
