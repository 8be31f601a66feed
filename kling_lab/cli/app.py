"""``kling-lab``: the command line over the same functions as the library.

Each command is a module of this package with ``add_parser(subparsers)``, which adds the command and
sets ``func`` (args → exit status). Exit status: 0 all requests ended ok, 1 some failed / were
skipped / are pending, 2 bad input or a backend that cannot start or be reached (nothing submitted
or written), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM, handled like Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from kling_lab.cli.args import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE, Parser
from kling_lab.errors import BackendConfigError, InvalidInput, KlingLabError
from kling_lab.util.signals import Terminated, sigterm_as_interrupt
from kling_lab.util.text import printable

# The command modules, in the order ``kling-lab --help`` lists them.
COMMAND_MODULES: list[str] = [
    "run",
    "estimate",
    "judge",
    "estimate_judge",
    "models",
    "runs",
    "resume",
    "reconcile",
    "budget",
    "report",
    "query",
    "compact",
    "sync",
    "backfill",
    "notebooks",
    "emulator",
    "schema",
]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="kling-lab", description="Sweeps, run logs and comparisons for text-to-video models on fal.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"kling_lab.cli.{name}").add_parser(sub)
    return parser


def one_line(exc: BaseException) -> str:
    """An error as one printable line (no newlines, no terminal control characters)."""
    return printable(" ".join(str(exc).split()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a Ctrl-C or SIGTERM at any moment ends it with one line, never a traceback."""
    with sigterm_as_interrupt():
        try:
            return _main(argv)
        except KeyboardInterrupt as exc:  # before or between the commands' own handling
            terminated = isinstance(exc, Terminated)
            print(f"kling-lab: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
            return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll is noise
    try:
        status: int = args.func(args)
        return status
    except BrokenPipeError:  # `kling-lab schema | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (InvalidInput, BackendConfigError, ValueError) as exc:
        print(f"kling-lab: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KlingLabError as exc:
        print(f"kling-lab: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_INCOMPLETE


__all__ = ["COMMAND_MODULES", "build_parser", "main"]
