"""``kling-lab schema``: the JSON Schema of a sweep file, for editors that validate YAML."""

from __future__ import annotations

import argparse
import json
from typing import Any

from kling_lab.cli.args import EXIT_OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of a sweep file (for editor validation)")
    p.set_defaults(func=cmd_schema)


def cmd_schema(args: argparse.Namespace) -> int:
    from kling_lab.sweep_file import sweep_file_schema

    print(json.dumps(sweep_file_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK
