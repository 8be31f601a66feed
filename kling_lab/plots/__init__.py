"""Matplotlib figures from a runs DataFrame (:func:`kling_lab.load_runs`).

Every function takes the DataFrame, returns a ``matplotlib.figure.Figure`` (built without pyplot: a
notebook shows it as the cell's value; ``fig.savefig(path)`` writes it), labels every axis with its
unit, and raises ``ValueError`` naming the problem when there is nothing to plot.

- :func:`cost_by_param`, :func:`cumulative_spend`: where the money went;
- :func:`latency_split`: queue / inference / download seconds;
- :func:`metric_vs_param`: does a parameter move a QC metric more than repeats do;
- :func:`contact_sheet`: frame strips faceted by two parameters;
- :func:`status_summary`: how runs ended, and why they failed.
"""

from .cost import cost_by_param, cumulative_spend
from .latency import latency_split
from .metrics import metric_vs_param
from .sheet import contact_sheet
from .status import status_summary

__all__ = ["contact_sheet", "cost_by_param", "cumulative_spend", "latency_split", "metric_vs_param", "status_summary"]
