"""A race's arms at its last look: each arm's mean and confidence bounds, and how it fared
(from :meth:`kling_lab.RaceResult.table`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kling_lab.util.text import truncate

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FATE_COLORS = {"winner": "tab:green", "in contention": "tab:orange"}  # ruled out: grey


def plot_race(table: pd.DataFrame, metric: str = "metric") -> Figure:
    """Mean ± the race's bounds per arm (winner green, still in contention orange, ruled out grey),
    with each arm's clips; arms sorted by mean."""
    from matplotlib.figure import Figure  # matplotlib loads only when a plot is asked for

    needed = {"arm", "mean", "lower", "upper", "fate", "clips"}
    if not len(table) or not needed <= set(table.columns):
        raise ValueError(f"plot_race needs a RaceResult.table() with columns {sorted(needed)}")
    rows = table.sort_values("mean", kind="stable", na_position="first")
    fig = Figure(figsize=(8, 1.0 + 0.38 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    mean = rows["mean"].to_numpy(float)
    low = np.clip(mean - rows["lower"].to_numpy(float), 0, None)
    high = np.clip(rows["upper"].to_numpy(float) - mean, 0, None)
    finite = np.isfinite(low) & np.isfinite(high)
    colors = [FATE_COLORS.get(f, "tab:gray") for f in rows["fate"]]
    ax.errorbar(
        mean[finite], y[finite], xerr=np.vstack([low[finite], high[finite]]), fmt="none", ecolor="0.6", capsize=3
    )
    ax.scatter(mean, y, c=colors, zorder=3)
    labels = [f"{truncate(a, 40)}  ({c} clips, {f})" for a, c, f in zip(rows["arm"], rows["clips"], rows["fate"])]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(f"{metric}: mean and the race's bounds at its last look")
    ax.set_title("race: green won, orange still in contention, grey ruled out", fontsize=10)
    return fig


__all__ = ["plot_race"]
