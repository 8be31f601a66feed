"""``kling-lab query | compact | sync``: the shared-store commands."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("query", help="run SQL over the run log (view `runs`) and votes (view `votes`)")
    p.add_argument("sql", help='e.g. "select user, sum(cost_usd) from runs group by 1"')
    p.add_argument("--store", metavar="DIR|URL")
    p.add_argument("--max-rows", type=int, default=200)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("compact", help="merge a store's small parquet files (safe beside readers)")
    p.add_argument("--store", metavar="DIR|URL")
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser("sync", help="push a store into another without duplicating rows or videos")
    p.add_argument("source", metavar="LOCAL")
    p.add_argument("target", metavar="REMOTE")
    p.set_defaults(func=cmd_sync)


def cmd_query(args: argparse.Namespace) -> int:
    import pandas as pd

    from kling_lab.store.query import query

    df = query(args.sql, args.store)
    with pd.option_context("display.max_rows", args.max_rows, "display.width", 200):
        print(df.to_string(index=False, max_rows=args.max_rows) if len(df) else "(no rows)")
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    from kling_lab.store.run_store import RunStore
    from kling_lab.store.votes import DATASET as VOTES
    from kling_lab.store.votes import SCHEMA as VOTE_SCHEMA

    store = RunStore(args.store)
    merged = {"runs": store.compact(), VOTES: store.compact(VOTES, VOTE_SCHEMA)}
    print(", ".join(f"{name}: merged {n} files" for name, n in merged.items()) + f" in {store.location}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from kling_lab.store.sync import sync

    print(sync(args.source, args.target))
    return 0
