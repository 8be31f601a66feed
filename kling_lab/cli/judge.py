"""``kling-lab judge``: score a store's clips with a judge (fal calls go through the runner: cap, journal, cache)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kling_lab.cli.args import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    add_backend,
    add_no_progress,
    add_store,
    positive_int,
    seconds,
    usd,
)


def add_judge_choice(p: argparse.ArgumentParser) -> None:
    """What ``judge`` and ``estimate-judge`` share: which judge, its rubric and endpoint, which clips."""
    add_store(p)
    p.add_argument("--sweep", metavar="ID", help="judge only this sweep's runs (default: every ok run in the store)")
    p.add_argument("--judge", default="vlm", help="vlm (default), pairwise, qc, or a registered judge's name")
    p.add_argument("--rubric", metavar="FILE", help="a rubric YAML file (dimensions: …); default: the judge's own")
    p.add_argument("--name", help="the judge's name in the store and in judge_<name>_… columns (default: --judge)")
    p.add_argument("--endpoint", help="the fal endpoint (vlm: fal-ai/video-understanding; openrouter/router/video)")
    p.add_argument("--model", help="the model behind openrouter/router/video (default google/gemini-2.5-flash)")
    p.add_argument(
        "--usd-per-call", type=usd, metavar="USD", help="an upper bound per call for a model without a known price"
    )
    p.add_argument(
        "--by",
        metavar="COLUMN",
        help="pairwise: pair clips of one prompt across values of COLUMN (default: your voted pairs)",
    )
    add_backend(p)
    p.add_argument("--force", action="store_true", help="judge again even clips judged before with this rubric")


def judge_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {
        "rubric": args.rubric,
        "name": args.name,
        "endpoint": args.endpoint,
        "model": args.model,
        "usd_per_call": args.usd_per_call,
    }
    return {k: v for k, v in options.items() if v is not None}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("judge", help="score a store's clips with a judge (vlm, pairwise, qc)")
    add_judge_choice(p)
    p.add_argument(
        "--max-cost", type=usd, metavar="USD", help="never spend more than this on judge calls (fal default: $25)"
    )
    p.add_argument("--concurrency", type=positive_int, default=4, help="judge calls in flight at once (default 4)")
    p.add_argument("--timeout", type=seconds, metavar="S", help="per-call timeout in seconds; cancels at fal")
    add_no_progress(p)
    p.set_defaults(func=cmd_judge)


def cmd_judge(args: argparse.Namespace) -> int:
    from kling_lab.judges.api import judge
    from kling_lab.util.signals import Terminated

    try:
        result = judge(
            None,
            args.judge,
            store=args.store,
            sweep_id=args.sweep,
            backend=args.backend,
            max_cost_usd=args.max_cost,
            by=args.by,
            concurrency=args.concurrency,
            force=args.force,
            request_timeout_s=args.timeout,
            progress=not args.no_progress,
            announce=True,
            **judge_options(args),
        )
    except KeyboardInterrupt as exc:
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(
            f"kling-lab: {how}; in-flight judge calls were cancelled at fal. Run the same command again to "
            "collect anything left (nothing is paid twice).",
            file=sys.stderr,
        )
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    print(result.summary())
    incomplete = result.count("failed") + result.count("skipped_budget") + result.count("cancelled") + result.pending
    return EXIT_INCOMPLETE if incomplete else EXIT_OK
