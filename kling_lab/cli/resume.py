"""``kling-lab resume``: collect requests journaled by an interrupted run (never re-submits)."""

from __future__ import annotations

import argparse
from typing import Any

from kling_lab.cli.args import add_backend, add_no_progress, add_store, positive_int
from kling_lab.cli.run import run_and_report


def add_parser(sub: Any) -> None:
    p = sub.add_parser("resume", help="collect requests journaled by an interrupted run (never re-submits)")
    add_store(p)
    add_backend(p)
    p.add_argument("--concurrency", type=positive_int, default=4)
    p.add_argument(
        "--request-id",
        action="append",
        default=[],
        metavar="ID",
        help="collect this request too: a token a run printed when its journal could not be written, or an id "
        "fal's platform API knows (repeatable)",
    )
    add_no_progress(p)
    p.set_defaults(func=cmd_resume)


def cmd_resume(args: argparse.Namespace) -> int:
    from kling_lab.runner.api import execute, make_runner
    from kling_lab.runner.rescue import parse

    for token in args.request_id:
        parse(token)  # a damaged token is refused before anything starts
    runner = make_runner(args.backend, args.store, concurrency=args.concurrency, progress=not args.no_progress)
    return run_and_report(runner, lambda: execute(runner, request_ids=args.request_id))
