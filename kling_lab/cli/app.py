"""``kling-lab``: the command line over the same functions as the library.

Exit status: 0 all requests ended ok, 1 some failed / were skipped / are pending,
2 bad input or a backend that cannot start (nothing submitted), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from kling_lab.errors import BackendConfigError, InvalidInput, KlingLabError

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(EXIT_USAGE, f"kling-lab: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def _usd(text: str) -> float:
    try:
        value = float(text.lstrip("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an amount in USD like 5 or 12.50; got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite amount >= 0; got {text!r}")
    return value


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="DIR", help="store directory (default: $KLING_LAB_STORE or ./kling_runs)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kling-lab", description="Sweeps, run logs and comparisons for Kling 2.0 Master on fal.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="run a sweep file and log every request")
    p.add_argument("file", help="sweep YAML file (see experiments/quickstart.yaml)")
    _store_arg(p)
    p.add_argument(
        "--backend",
        choices=["emulator", "fal"],
        default="emulator",
        help="emulator (default, free placeholders) or fal (real, needs FAL_KEY, spends money)",
    )
    p.add_argument("--concurrency", type=_positive_int, default=4, help="requests in flight at once (default 4)")
    p.add_argument("--max-cost", type=_usd, metavar="USD", help="never spend more than this (fal default: $25)")
    p.add_argument("--force", action="store_true", help="submit even when an identical ok run is in the store")
    p.add_argument("--timeout", type=float, metavar="S", help="per-request timeout; cancels at fal and logs failed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("estimate", help="count requests and cost of a sweep file without running it")
    p.add_argument("file")
    p.add_argument("--concurrency", type=_positive_int, default=4)

    p = sub.add_parser("runs", help="a table of recent runs")
    _store_arg(p)
    p.add_argument("--sweep", help="only this sweep_id")
    p.add_argument("--limit", type=_positive_int, default=20, help="rows to show (default 20)")

    p = sub.add_parser("resume", help="collect requests journaled by an interrupted run (never re-submits)")
    _store_arg(p)
    p.add_argument("--backend", choices=["emulator", "fal"], default="emulator")
    p.add_argument("--concurrency", type=_positive_int, default=4)
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("emulator", help="serve the local fal emulator in the foreground")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--queue-delay", type=float, default=1.0, metavar="S")
    p.add_argument("--service-time", type=float, default=3.0, metavar="S")
    p.add_argument("--concurrency", type=_positive_int, default=4)
    p.add_argument("--render-scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    for fault in ("429", "500", "503", "drop", "lost-submit", "content-policy", "truncated-video"):
        p.add_argument(f"--rate-{fault}", type=float, default=0.0, metavar="P")
    for name in EXTRA_COMMAND_MODULES:
        import importlib

        importlib.import_module(f"kling_lab.{name}").add_parser(sub)
    return parser


# Modules that add their own subcommands: each has ``add_parser(subparsers)`` which calls
# ``sub.add_parser(...)`` and ``set_defaults(func=...)`` (func takes the args, returns an exit code).
EXTRA_COMMAND_MODULES: list[str] = ["cli.store_commands", "cli.backfill", "cli.report", "cli.notebooks"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll is noise
    try:
        func = getattr(args, "func", None) or COMMANDS[args.command]
        return func(args)
    except (InvalidInput, BackendConfigError, ValueError) as exc:
        print(f"kling-lab: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KlingLabError as exc:
        print(f"kling-lab: error: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE


def cmd_estimate(args: argparse.Namespace) -> int:
    from kling_lab.sweep import Sweep

    sweep = Sweep.from_yaml(args.file)
    print(f"{sweep.name}: {sweep.estimate(args.concurrency)}")
    return EXIT_OK


def _run_with_runner(runner: Any, work: Any) -> int:
    from kling_lab.util.loop_thread import run_sync

    try:
        result = run_sync(work)
    except KeyboardInterrupt:
        if runner.last_result is not None:
            print(runner.last_result.summary(), file=sys.stderr)
        print(
            "kling-lab: interrupted; in-flight requests were cancelled at fal. "
            "`kling-lab resume` collects anything left.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(result.summary())
    incomplete = result.count("failed") + result.count("skipped_budget") + result.count("cancelled") + result.pending
    return EXIT_INCOMPLETE if incomplete else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from kling_lab.runner.api import execute, make_runner
    from kling_lab.sweep import Sweep

    sweep = Sweep.from_yaml(args.file)  # bad input fails here: nothing started
    runner = make_runner(
        args.backend,
        args.store,
        concurrency=args.concurrency,
        max_cost_usd=args.max_cost,
        force=args.force,
        request_timeout_s=args.timeout,
        progress=not args.no_progress,
    )
    if runner.backend.name == "emulator":
        print(f"emulator (free, placeholder videos, not Kling output): {len(sweep)} requests", file=sys.stderr)
    return _run_with_runner(runner, lambda: execute(runner, sweep))


def cmd_resume(args: argparse.Namespace) -> int:
    from kling_lab.runner.api import execute, make_runner

    runner = make_runner(args.backend, args.store, concurrency=args.concurrency, progress=not args.no_progress)
    return _run_with_runner(runner, lambda: execute(runner))


def cmd_runs(args: argparse.Namespace) -> int:
    from kling_lab.cli.tables import runs_table
    from kling_lab.store.run_store import RunStore

    store = RunStore(args.store)
    df = store.load(sweep_id=args.sweep)
    if df.empty:
        print(f"no runs in {store.root}")
        return EXIT_OK
    print(runs_table(df, limit=args.limit))
    return EXIT_OK


def cmd_emulator(args: argparse.Namespace) -> int:
    from kling_lab.backends.emulator import EmulatorConfig, EmulatorServer

    config = EmulatorConfig(
        queue_delay_s=args.queue_delay,
        service_time_s=args.service_time,
        concurrency=args.concurrency,
        render_scale=args.render_scale,
        seed=args.seed,
        **{
            f"rate_{name}": getattr(args, f"rate_{name}")
            for name in ("429", "500", "503", "drop", "lost_submit", "content_policy", "truncated_video")
        },
    )
    server = EmulatorServer(config, port=args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return EXIT_OK


COMMANDS = {"run": cmd_run, "estimate": cmd_estimate, "runs": cmd_runs, "resume": cmd_resume, "emulator": cmd_emulator}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
