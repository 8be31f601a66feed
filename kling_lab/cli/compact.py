"""``kling-lab compact``: merge a store's small parquet files, safely beside readers."""

from __future__ import annotations

import argparse
from typing import Any

from kling_lab.cli.args import EXIT_OK, add_store


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compact", help="merge a store's small parquet files (safe beside readers)")
    add_store(p, remote=True)
    p.set_defaults(func=cmd_compact)


def cmd_compact(args: argparse.Namespace) -> int:
    from kling_lab.store.run_store import RunStore
    from kling_lab.store.votes import DATASET as VOTES
    from kling_lab.store.votes import SCHEMA as VOTE_SCHEMA

    store = RunStore(args.store)
    merged = {"runs": store.compact(), VOTES: store.compact(VOTES, VOTE_SCHEMA)}
    print(", ".join(f"{name}: merged {n} files" for name, n in merged.items()) + f" in {store.location}")
    return EXIT_OK
