"""kling_lab: sweeps, run logs and comparisons for Kling 2.0 Master on fal."""

from ._version import __version__

__all__ = ["__version__"]
