"""How runs ended: outcome counts per group, and what the failures were."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from kling_lab.plots._common import (
    OUTCOME_COLORS,
    OUTCOMES,
    check_runs,
    label,
    legend_outside,
    matches,
    new_figure,
    ordered_values,
    outcomes,
    value_label,
)


def status_summary(df: pd.DataFrame, by: str = "experiment") -> Figure:
    """Horizontal stacked bars of run counts per outcome (ok, cache hit, failed, cancelled, skipped_budget)
    for each value of ``by``; when some runs failed, a second panel counts them by ``error_type``."""
    who = "status_summary"
    check_runs(df, ["status", by], who)
    outcome = outcomes(df)
    groups = ordered_values(df[by])
    failed = df.loc[outcome.isin(["failed", "cancelled"]), "error_type"] if "error_type" in df.columns else None
    has_errors = failed is not None and len(failed) > 0
    fig = new_figure(11.0 if has_errors else 7.0, max(2.5, 0.45 * len(groups) + 1.5))
    grid = fig.add_gridspec(1, 2 if has_errors else 1, width_ratios=[3, 2] if has_errors else [1])
    ax = fig.add_subplot(grid[0, 0])
    y = np.arange(len(groups))
    left = np.zeros(len(groups))
    for name in (o for o in OUTCOMES if (outcome == o).any()):
        counts = np.array([((outcome == name) & matches(df[by], g)).sum() for g in groups], dtype=float)
        bars = ax.barh(y, counts, left=left, color=OUTCOME_COLORS[name], label=name)
        ax.bar_label(bars, labels=[f"{int(c)}" if c else "" for c in counts], label_type="center", fontsize=8)
        left += counts
    ax.set_yticks(y, [value_label(g) for g in groups])
    ax.invert_yaxis()
    ax.set_xlabel("runs (count)")
    ax.set_ylabel(label(by))
    ax.set_title(f"Outcome of {len(df)} runs by {by}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend_outside(ax, title="outcome")
    if failed is not None and has_errors:
        _error_panel(fig.add_subplot(grid[0, 1]), failed.fillna("(no error_type)"))
    return fig


def _error_panel(ax: Axes, error_types: pd.Series) -> None:
    """Counts of failed and cancelled runs by error_type, most frequent on top."""
    counts = error_types.astype(str).value_counts()
    bars = ax.barh(np.arange(len(counts)), counts.to_numpy(), color=OUTCOME_COLORS["failed"])
    ax.bar_label(bars, fontsize=8, padding=2)
    ax.set_yticks(np.arange(len(counts)), [value_label(e) for e in counts.index])
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("failed or cancelled runs (count)")
    ax.set_ylabel("error_type")
    ax.set_title("Why runs failed")
