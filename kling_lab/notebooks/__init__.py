"""Notebooks: papermill grids of templates (``run_grid``), the helpers the templates call, and the
leak checks on executed notebooks."""

from kling_lab.notebooks.grid import run_grid
from kling_lab.notebooks.template_helpers import backend_options, pick_sweep, simulate_votes, sweeps

__all__ = ["backend_options", "pick_sweep", "run_grid", "simulate_votes", "sweeps"]
