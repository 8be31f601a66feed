"""What every command shares: the parser class (one-line errors, exit 2), exit codes and argument types."""

from __future__ import annotations

import argparse
from typing import Any

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


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


def usd(text: str) -> float:
    """An argparse type: a finite amount of dollars >= 0 (``12.50`` or ``$12.50``)."""
    try:
        value = float(text.lstrip("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an amount in USD like 5 or 12.50; got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite amount >= 0; got {text!r}")
    return value


def add_store(p: argparse.ArgumentParser, *, remote: bool = False) -> None:
    """``--store DIR`` (or ``DIR|URL`` where object storage works)."""
    p.add_argument(
        "--store",
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
    "EXIT_USAGE",
    "Parser",
    "add_backend",
    "add_no_progress",
    "add_store",
    "positive_int",
    "usd",
]
