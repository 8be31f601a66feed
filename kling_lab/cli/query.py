"""``kling-lab query SQL``: DuckDB over the store's ``runs`` and ``votes`` views."""

from __future__ import annotations

import argparse
from typing import Any

from kling_lab.cli.args import EXIT_OK, add_store, positive_int


def add_parser(sub: Any) -> None:
    p = sub.add_parser("query", help="run SQL over the run log (view `runs`) and votes (view `votes`)")
    p.add_argument("sql", help='e.g. "select user, sum(cost_usd) from runs group by 1"')
    add_store(p, remote=True)
    p.add_argument("--max-rows", type=positive_int, default=200)
    p.add_argument(
        "--allow-file-access",
        action="store_true",
        help="let DuckDB read and write files beyond the store (COPY … TO, read_csv): for SQL you trust",
    )
    p.set_defaults(func=cmd_query)


def cmd_query(args: argparse.Namespace) -> int:
    import pandas as pd

    from kling_lab.store.query import query
    from kling_lab.util.text import printable

    df = query(args.sql, args.store, allow_file_access=args.allow_file_access)
    with pd.option_context("display.max_rows", args.max_rows, "display.width", 200):
        text = df.to_string(index=False, max_rows=args.max_rows) if len(df) else "(no rows)"
    print(printable(text))  # a stored value never drives the terminal (escape sequences, NUL, BEL)
    return EXIT_OK
