"""``kling-lab estimate FILE``: request count, cost and worst-case time of a sweep file; starts nothing."""

from __future__ import annotations

import argparse
from typing import Any

from kling_lab.cli.args import EXIT_OK, max_requests, positive_int


def add_parser(sub: Any) -> None:
    p = sub.add_parser("estimate", help="count requests and cost of a sweep file without running it")
    p.add_argument("file")
    p.add_argument("--concurrency", type=positive_int, default=4)
    max_requests(p)
    p.set_defaults(func=cmd_estimate)


def cmd_estimate(args: argparse.Namespace) -> int:
    from kling_lab.sweep import Sweep

    sweep = Sweep.from_yaml(args.file, max_requests=args.max_requests)
    print(f"{sweep.name}: {sweep.estimate(args.concurrency)}")
    return EXIT_OK
