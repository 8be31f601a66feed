"""``kling-lab budget``: the store-wide budget every runner checks before reserving (show, set, clear)."""

from __future__ import annotations

import argparse
from typing import Any

from kling_lab.cli.args import EXIT_OK, add_store, usd


def add_parser(sub: Any) -> None:
    p = sub.add_parser("budget", help="show or set the store-wide budget shared by everyone who runs into the store")
    add_store(p, remote=True)
    p.add_argument(
        "--backend",
        default="fal",
        help="whose spend to show: fal (default; real money) or emulator (placeholder prices)",
    )
    actions = p.add_subparsers(dest="action", metavar="{set,clear}")
    put = actions.add_parser("set", help="set the limit (USD)")
    put.add_argument("limit", type=usd, metavar="USD")
    put.add_argument("--per-user", action="store_true", help="the limit applies to each user ($KLING_LAB_USER)")
    put.add_argument("--per-month", action="store_true", help="the limit applies to each calendar month (UTC)")
    add_store(put, remote=True, again=True)
    add_store(actions.add_parser("clear", help="remove the limit"), remote=True, again=True)
    p.set_defaults(func=cmd_budget)


def cmd_budget(args: argparse.Namespace) -> int:
    from kling_lab.runner.rows import current_user
    from kling_lab.store.budget import BudgetRule, budget_report, write_rule
    from kling_lab.store.run_store import RunStore

    store = RunStore(args.store)
    if args.action == "set":
        rule = BudgetRule(args.limit, per_user=args.per_user, per_month=args.per_month)
        write_rule(store, rule)
        print(f"budget of {store.location}: {rule.describe()} (checked by every run before it reserves a request)")
        return EXIT_OK
    if args.action == "clear":
        write_rule(store, None)
        print(f"budget of {store.location}: none")
        return EXIT_OK
    report = budget_report(store, args.backend, current_user())
    if report is None:
        print(f"budget of {store.location}: none set (kling-lab budget set USD [--per-user] [--per-month])")
        return EXIT_OK
    rule = report["rule"]
    scope = []
    if rule.per_user:
        scope.append(f"user {report['user']}")
    if rule.per_month:
        scope.append(f"month {report['month']}")
    where = f" ({', '.join(scope)})" if scope else ""
    print(
        f"budget of {store.location}: {rule.describe()}; {args.backend} spend{where}: ${report['spent_usd']:.2f} "
        f"logged + ${report['open_usd']:.2f} reserved by running runs; ${report['left_usd']:.2f} left"
    )
    return EXIT_OK
