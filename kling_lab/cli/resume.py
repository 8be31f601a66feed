"""``kling-lab resume``: collect requests journaled by an interrupted run (never re-submits), then judge calls."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kling_lab.cli.args import EXIT_INCOMPLETE, EXIT_OK, add_backend, add_no_progress, add_store, positive_int
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
    from kling_lab.judges.api import make_judge_runner, pending_judge_calls, resume_judging_async
    from kling_lab.runner.api import execute, make_runner
    from kling_lab.runner.rescue import parse

    for token in args.request_id:
        parse(token)  # a damaged token is refused before anything starts
    judge_calls = pending_judge_calls(args.store, args.backend)
    runner = make_runner(args.backend, args.store, concurrency=args.concurrency, progress=not args.no_progress)
    status = run_and_report(runner, lambda: execute(runner, request_ids=args.request_id))
    if not judge_calls or status not in (EXIT_OK, EXIT_INCOMPLETE):
        return status
    judging = make_judge_runner(args.backend, args.store, concurrency=args.concurrency, progress=not args.no_progress)
    print(f"judge calls: {judge_calls} journaled without their judgement", file=sys.stderr)
    judged = run_and_report(judging, lambda: resume_judging_async(judging))
    return max(status, judged)
