"""``kling-lab notebooks run``: execute a template notebook over parameter sets (see :mod:`kling_lab.notebooks`).

::

    kling-lab notebooks run notebooks/sweep.ipynb -p cfg_values "[0.25, 0.75]" -p repeats 3
    kling-lab notebooks run notebooks/sweep.ipynb --grid experiments/cfg_grid.yaml --store runs/

A ``-p`` value is read as JSON when it parses (numbers, ``[lists]``, ``true``, ``null``), else as
text. ``-p`` values apply to every parameter set of ``--grid`` (overriding it). Exit status: 0 when
every notebook ran, 1 when one failed (its output notebook is kept), 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from kling_lab.cli.args import add_store, seconds

__all__ = ["add_parser", "cmd_notebooks_run", "parse_value"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``notebooks run`` to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    p = subparsers.add_parser("notebooks", help="run template notebooks (papermill) over parameter grids")
    sub = p.add_subparsers(dest="notebooks_command", required=True)
    r = sub.add_parser("run", help="execute TEMPLATE once per parameter set; print a summary")
    r.add_argument("template", help="the template notebook (a cell tagged 'parameters'), e.g. notebooks/sweep.ipynb")
    r.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter for every notebook (VALUE as JSON if it parses, else text); repeatable",
    )
    r.add_argument(
        "--grid",
        metavar="FILE.yaml",
        help="parameter sets: a YAML list of mappings, or a mapping of lists (cartesian product)",
    )
    r.add_argument(
        "--out", metavar="DIR", help="where executed notebooks go (default: experiments/<grid or template name>)"
    )
    add_store(r)
    r.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    r.add_argument("--timeout", type=seconds, metavar="S", help="fail a cell that runs longer than this")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_notebooks_run)
    return p


def parse_value(text: str) -> Any:
    """A ``-p`` value: JSON when it parses (``2``, ``[0.1, 0.9]``, ``null``), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def cmd_notebooks_run(args: argparse.Namespace) -> int:
    """Run the grid, print one line per notebook; 0 if all ran, 1 if one failed."""
    from kling_lab.notebooks.grid import default_out_dir, load_grid, run_grid

    fixed = {name: parse_value(value) for name, value in args.parameter}
    sets = [{**params, **fixed} for params in load_grid(args.grid)]
    out = args.out or default_out_dir(args.template, args.grid)
    summary = run_grid(
        args.template,
        sets,
        out,
        store=args.store,
        kernel_name=args.kernel,
        progress=not args.no_progress,
        timeout_s=args.timeout,
    )
    table = summary.assign(
        notebook=[os.path.relpath(p) for p in summary["notebook"]],
        seconds=summary["seconds"].round(1),
        usd=summary["usd"].map("${:.2f}".format),
        error=summary["error"].fillna(""),
    )
    print(table.drop(columns="parameters").to_string(index=False))
    failed = int((summary["status"] != "ok").sum())
    print(
        f"{len(summary) - failed} of {len(summary)} notebooks ran; {int(summary['runs'].sum())} runs, "
        f"${summary['usd'].sum():.2f}; summary in {out}"
    )
    return 1 if failed else 0
