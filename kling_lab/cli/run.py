"""``kling-lab run FILE``: run a sweep file and log every request."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from kling_lab.cli.args import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    add_backend,
    add_no_progress,
    add_store,
    max_requests,
    positive_int,
    seconds,
    usd,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="run a sweep file and log every request")
    p.add_argument("file", help="sweep YAML file (see experiments/quickstart.yaml)")
    add_store(p)
    add_backend(p)
    p.add_argument("--concurrency", type=positive_int, default=4, help="requests in flight at once (default 4)")
    p.add_argument("--max-cost", type=usd, metavar="USD", help="never spend more than this (fal default: $25)")
    p.add_argument("--force", action="store_true", help="submit even when an identical ok run is in the store")
    p.add_argument(
        "--timeout", type=seconds, metavar="S", help="per-request timeout in seconds; cancels at fal and logs failed"
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="submit again what fal refused before (content policy, invalid input); by default a re-run skips it",
    )
    max_requests(p)
    add_no_progress(p)
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from kling_lab.sweep import Sweep

    sweep = Sweep.from_yaml(args.file, max_requests=args.max_requests)  # bad input fails here: nothing started
    sweep.require_prices()
    from kling_lab.runner.api import execute, make_runner  # the heavy imports, once the input is known good

    runner = make_runner(
        args.backend,
        args.store,
        concurrency=args.concurrency,
        max_cost_usd=args.max_cost,
        force=args.force,
        request_timeout_s=args.timeout,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
    )
    return run_and_report(runner, lambda: execute(runner, sweep, announce=True))


def run_and_report(runner: Any, work: Callable[[], Awaitable[Any]]) -> int:
    """Run ``work`` to its end, print the summary; exit 0 (all ok), 1 (something left), 130 (Ctrl-C)
    or 143 (SIGTERM, handled like Ctrl-C: in-flight requests are cancelled at fal first)."""
    from kling_lab.util.loop_thread import run_sync
    from kling_lab.util.signals import Terminated

    try:
        result = run_sync(work)
    except KeyboardInterrupt as exc:
        if runner.last_result is not None:
            print(runner.last_result.summary(), file=sys.stderr)
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(
            f"kling-lab: {how}; in-flight requests were cancelled at fal. `kling-lab resume` collects anything left.",
            file=sys.stderr,
        )
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    print(result.summary())
    incomplete = (
        result.count("failed")
        + result.count("skipped_budget")
        + result.count("skipped_final")
        + result.count("cancelled")
        + result.pending
        + result.busy
        + result.held
    )
    return EXIT_INCOMPLETE if incomplete else EXIT_OK
