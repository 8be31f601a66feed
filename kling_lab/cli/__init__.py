"""``kling-lab``: one module per command over the library (see :mod:`kling_lab.cli.app`).

The console script calls :func:`main`, which imports the commands only when called: a Ctrl-C while
they load ends the command with one line (exit 130), not a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """The ``kling-lab`` command (see :func:`kling_lab.cli.app.main`)."""
    try:
        from kling_lab.cli.app import main as run
    except KeyboardInterrupt:
        print("kling-lab: interrupted", file=sys.stderr)
        return 130
    return run(argv)


__all__ = ["main"]
