"""``kling-lab models``: the model registry (alias, endpoints, price rule, inputs, source); ``--check-prices``
compares the registry's prices with fal's pricing API (needs FAL_KEY)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from kling_lab.cli.args import EXIT_INCOMPLETE, EXIT_OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser("models", help="list the models kling_lab knows (aliases, endpoints, prices, inputs)")
    p.add_argument("aliases", nargs="*", metavar="ALIAS", help="only these models")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--check-prices",
        action="store_true",
        help="compare the registry's prices with fal's pricing API (needs FAL_KEY); exit 1 on a difference",
    )
    p.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    from kling_lab.models import DEFAULT_MODEL, get_model, models

    chosen = [get_model(alias) for alias in args.aliases] if args.aliases else models()
    if args.check_prices:
        from kling_lab.backends.pricing import check_prices

        checks = check_prices(chosen=chosen)
        for check in checks:
            print(check.line())
        differ = [c for c in checks if c.status == "differs"]
        print(f"{len(checks)} endpoints checked; {len(differ)} differ from fal's pricing API")
        return EXIT_INCOMPLETE if differ else EXIT_OK
    if args.json:
        print(json.dumps([_as_dict(m) for m in chosen], indent=2))
        return EXIT_OK
    for model in chosen:
        default = "  [default]" if model.alias == DEFAULT_MODEL else ""
        print(f"{model.alias}  {model.name} ({model.family}){default}")
        for endpoint in model.endpoints:
            print(f"  {endpoint.kind:<15} {endpoint.id}")
            print(f"  {'':<15} price: {endpoint.price.describe()}")
            print(f"  {'':<15} inputs: {', '.join(endpoint.parameters())}")
            print(f"  {'':<15} source: {endpoint.source_url} (read {endpoint.read_on})")
        print(f"  capabilities: {', '.join(sorted(model.capabilities)) or 'none'}")
        if model.notes:
            print(f"  note: {model.notes}")
        print()
    return EXIT_OK


def _as_dict(model: Any) -> dict[str, Any]:
    return {
        "alias": model.alias,
        "name": model.name,
        "family": model.family,
        "capabilities": sorted(model.capabilities),
        "notes": model.notes,
        "endpoints": [
            {
                "kind": e.kind,
                "id": e.id,
                "price": e.price.describe(),
                "inputs": e.parameters(),
                "source_url": e.source_url,
                "read_on": e.read_on,
            }
            for e in model.endpoints
        ],
    }
