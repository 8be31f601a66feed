"""``kling-lab``: one module per command over the library (see :mod:`kling_lab.cli.app`)."""

from kling_lab.cli.app import main

__all__ = ["main"]
