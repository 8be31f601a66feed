"""Matplotlib figures from a runs DataFrame (:func:`kling_lab.load_runs`).

Every function takes the DataFrame, returns a ``matplotlib.figure.Figure`` (built without pyplot: a
notebook shows it as the cell's value; ``fig.savefig(path)`` writes it), labels every axis with its
unit, and raises ``ValueError`` naming the problem when there is nothing to plot.

- :func:`cost_by_param`, :func:`cumulative_spend`: where the money went;
- :func:`latency_split`: queue / inference / download seconds;
- :func:`metric_vs_param`: does a parameter move a QC metric more than repeats do;
- :func:`contact_sheet`: frame strips faceted by two parameters;
- :func:`status_summary`: how runs ended, and why they failed;
- :func:`plot_win_rates`: A/B win rates and Bradley–Terry strengths per arm;
- :func:`plot_race`: a race's arms, their bounds and who won.

The submodules load on first use, so ``import kling_lab`` does not import matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "cost_by_param": "cost",
    "cumulative_spend": "cost",
    "latency_split": "latency",
    "metric_vs_param": "metrics",
    "contact_sheet": "sheet",
    "status_summary": "status",
    "plot_win_rates": "winrates",
    "plot_race": "race",
}

if TYPE_CHECKING:
    from kling_lab.plots.cost import cost_by_param, cumulative_spend
    from kling_lab.plots.latency import latency_split
    from kling_lab.plots.metrics import metric_vs_param
    from kling_lab.plots.race import plot_race
    from kling_lab.plots.sheet import contact_sheet
    from kling_lab.plots.status import status_summary
    from kling_lab.plots.winrates import plot_win_rates


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


__all__ = [
    "contact_sheet",
    "cost_by_param",
    "cumulative_spend",
    "latency_split",
    "metric_vs_param",
    "plot_race",
    "plot_win_rates",
    "status_summary",
]
