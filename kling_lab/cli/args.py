"""What every command shares: the parser class (one-line errors, exit 2), exit codes and argument types."""

from __future__ import annotations

import argparse
from typing import Any

from kling_lab.util.clock import MAX_TIMEOUT_S

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit 2."""

    def error(self, message: str) -> Any:  # argparse declares NoReturn; we exit too
        self.exit(EXIT_USAGE, f"kling-lab: error: {message}\n")


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0, at most a week (no nan, inf or 1e300)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds like 600; got {text!r}") from None
    if not 0 < value <= MAX_TIMEOUT_S:  # also false for nan
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds; got {text!r}")
    return value


def port(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number 0–65535; got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0–65535; got {text!r}")
    return value


def max_requests(p: argparse.ArgumentParser) -> None:
    """``--max-requests N``: refuse a sweep file that expands to more requests (checked before building)."""
    from kling_lab.sweep_file import MAX_REQUESTS

    p.add_argument(
        "--max-requests",
        type=positive_int,
        default=MAX_REQUESTS,
        metavar="N",
        help=f"refuse a sweep of more than N requests (default {MAX_REQUESTS:,})",
    )


def usd(text: str) -> float:
    """An argparse type: a finite amount of dollars >= 0 (``12.50`` or ``$12.50``)."""
    try:
        value = float(text.lstrip("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an amount in USD like 5 or 12.50; got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite amount >= 0; got {text!r}")
    return value


def add_store(p: argparse.ArgumentParser, *, remote: bool = False, again: bool = False) -> None:
    """``--store DIR`` (or ``DIR|URL`` where object storage works).

    ``again``: ``p`` is a sub-action of a parser that has ``--store`` already (``budget --store X set``
    and ``budget set --store X`` both work): no default of its own, which would replace X."""
    p.add_argument(
        "--store",
        default=argparse.SUPPRESS if again else None,
        metavar="DIR|URL" if remote else "DIR",
        help="store directory"
        + (" or URL (s3://…)" if remote else "")
        + " (default: $KLING_LAB_STORE or ./kling_runs)",
    )


def add_backend(p: argparse.ArgumentParser) -> None:
    """``--backend NAME``: the choices are the registered backends, plugins included."""
    from kling_lab.backends import DEFAULT_BACKEND, backend_names

    p.add_argument(
        "--backend",
        choices=backend_names(),
        default=DEFAULT_BACKEND,
        help="emulator (default, free placeholders), fal (real, needs FAL_KEY, spends money), or a plugin's backend",
    )


def add_no_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


__all__ = [
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "Parser",
    "add_backend",
    "add_no_progress",
    "add_store",
    "max_requests",
    "port",
    "positive_int",
    "seconds",
    "usd",
]
