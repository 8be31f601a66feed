"""``kling-lab estimate-judge``: what a judging pass would send and cost; starts nothing."""

from __future__ import annotations

import argparse
from typing import Any

from kling_lab.cli.args import EXIT_OK
from kling_lab.cli.judge import add_judge_choice, judge_options


def add_parser(sub: Any) -> None:
    p = sub.add_parser("estimate-judge", help="count and price a judging pass without sending anything")
    add_judge_choice(p)
    p.set_defaults(func=cmd_estimate_judge)


def cmd_estimate_judge(args: argparse.Namespace) -> int:
    from kling_lab.judges.api import estimate_judge

    estimate = estimate_judge(
        None,
        args.judge,
        store=args.store,
        sweep_id=args.sweep,
        backend=args.backend,
        by=args.by,
        force=args.force,
        **judge_options(args),
    )
    print(estimate.summary())
    return EXIT_OK
