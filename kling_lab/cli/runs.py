"""``kling-lab runs``: a table of recent runs."""

from __future__ import annotations

import argparse
from typing import Any

from kling_lab.cli.args import EXIT_OK, add_store, positive_int


def add_parser(sub: Any) -> None:
    p = sub.add_parser("runs", help="a table of recent runs")
    add_store(p)
    p.add_argument("--sweep", help="only this sweep_id")
    p.add_argument("--limit", type=positive_int, default=20, help="rows to show (default 20)")
    p.set_defaults(func=cmd_runs)


def cmd_runs(args: argparse.Namespace) -> int:
    from kling_lab.cli.tables import runs_table
    from kling_lab.store.run_store import RunStore
    from kling_lab.util.text import printable

    store = RunStore(args.store)
    df = store.load(sweep_id=args.sweep)
    if df.empty:
        print(f"no runs in {store.root}")
        return EXIT_OK
    print(printable(runs_table(df, limit=args.limit)))  # stored text never drives the terminal
    return EXIT_OK
