"""``kling-lab reconcile``: fal's requests (and billing) against the run log; orphans adopted for a resume."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from kling_lab.cli.args import EXIT_INCOMPLETE, EXIT_OK, add_backend, add_store

_AGO = re.compile(r"(\d+(?:\.\d+)?)\s*([hd])")


def since(text: str) -> datetime:
    """An argparse type: ``24h``, ``7d`` or an ISO 8601 date/time (UTC unless it says otherwise)."""
    if match := _AGO.fullmatch(text.strip()):
        amount, unit = float(match.group(1)), match.group(2)
        return datetime.now(UTC) - (timedelta(hours=amount) if unit == "h" else timedelta(days=amount))
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 24h, 7d or an ISO date like 2026-12-01; got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "reconcile",
        help="compare fal's requests and billing with the run log; adopt orphaned paid requests for a resume",
    )
    add_store(p)
    add_backend(p)
    p.add_argument("--since", type=since, metavar="WHEN", help="24h, 7d or an ISO date (default: 24 hours ago)")
    p.set_defaults(func=cmd_reconcile)


def cmd_reconcile(args: argparse.Namespace) -> int:
    from kling_lab.backends import get_backend
    from kling_lab.runner.reconcile import reconcile
    from kling_lab.store.run_store import RunStore
    from kling_lab.util.loop_thread import run_sync
    from kling_lab.util.text import printable

    store = RunStore(args.store)
    backend = get_backend(args.backend)

    async def work() -> Any:
        try:
            return await reconcile(backend, store, args.since)
        finally:
            await backend.aclose()

    result = run_sync(work)
    for line in result.lines():
        print(printable(line))
    return EXIT_OK if result.clean else EXIT_INCOMPLETE
