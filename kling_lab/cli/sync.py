"""``kling-lab sync LOCAL REMOTE``: push one store into another without duplicating rows or videos."""

from __future__ import annotations

import argparse
from typing import Any

from kling_lab.cli.args import EXIT_OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sync", help="push a store into another without duplicating rows or videos")
    p.add_argument("source", metavar="LOCAL")
    p.add_argument("target", metavar="REMOTE")
    p.set_defaults(func=cmd_sync)


def cmd_sync(args: argparse.Namespace) -> int:
    from kling_lab.store.sync import sync

    print(sync(args.source, args.target))
    return EXIT_OK
