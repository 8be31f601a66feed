"""``kling-lab run FILE``: run a sweep file and log every request; ``--race METRIC``: run it as a race."""

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
from kling_lab.errors import InvalidInput


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
    race = p.add_argument_group(
        "race", "run the sweep as a race: repeats only for the arms still in contention (kling_lab.runner.race)"
    )
    race.add_argument("--race", metavar="METRIC", help="race the sweep's arms on this run-log column, e.g. qc_motion")
    way = race.add_mutually_exclusive_group()
    way.add_argument(
        "--higher-is-better", dest="higher_is_better", action="store_true", default=None, help="e.g. qc_motion"
    )
    way.add_argument("--lower-is-better", dest="higher_is_better", action="store_false", help="e.g. qc_flicker")
    race.add_argument("--confidence", type=float, default=0.95, help="between 0.5 and 1 (default 0.95)")
    race.add_argument("--min-difference", type=float, metavar="D", help="smallest difference you care about")
    race.add_argument("--initial-repeats", type=positive_int, metavar="N", help="clips per arm in round 1")
    race.add_argument("--max-repeats", type=positive_int, metavar="N", help="never more clips per arm than this")
    race.add_argument("--max-rounds", type=positive_int, default=10, metavar="N", help="round limit (default 10)")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from kling_lab.sweep import Sweep

    sweep = Sweep.from_yaml(args.file, max_requests=args.max_requests)  # bad input fails here: nothing started
    sweep.require_prices()
    if args.race is not None:
        return cmd_race(args, sweep)
    given = [f"--{n.replace('_', '-')}" for n in RACE_ONLY if getattr(args, n) not in (None, RACE_DEFAULTS.get(n))]
    if given:
        raise InvalidInput(f"{given[0]} is an option of a race: add --race METRIC")
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


RACE_ONLY = ("higher_is_better", "confidence", "min_difference", "initial_repeats", "max_repeats", "max_rounds")
RACE_DEFAULTS = {"confidence": 0.95, "max_rounds": 10}


def cmd_race(args: argparse.Namespace, sweep: Any) -> int:
    """``kling-lab run FILE --race METRIC --higher-is-better|--lower-is-better``."""
    from types import SimpleNamespace

    from kling_lab.runner.api import make_runner
    from kling_lab.runner.race import plan_race, race_async

    if args.higher_is_better is None:
        raise InvalidInput("--race needs --higher-is-better or --lower-is-better: say which way the metric is better")

    def new_runner(backend: Any, **options: Any) -> Any:
        return make_runner(backend, args.store, **options)

    race = dict(
        metric=args.race,
        higher_is_better=args.higher_is_better,
        confidence=args.confidence,
        min_difference=args.min_difference,
        initial_repeats=args.initial_repeats,
        max_repeats=args.max_repeats,
        max_rounds=args.max_rounds,
    )
    options = dict(
        concurrency=args.concurrency,
        force=args.force,
        request_timeout_s=args.timeout,
        progress=not args.no_progress,
    )
    _rule, arms = plan_race(sweep, **race, max_cost_usd=args.max_cost)  # bad input: one line, nothing started
    if args.backend == "emulator":
        print(f"emulator (free, placeholder videos, not Kling output): a race over {len(arms)} arms", file=sys.stderr)
    holder = SimpleNamespace(last_result=None)  # a killed race resumes from the cache: nothing to print
    return run_and_report(
        holder,
        lambda: race_async(sweep, new_runner, backend=args.backend, max_cost_usd=args.max_cost, **race, **options),
    )


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
