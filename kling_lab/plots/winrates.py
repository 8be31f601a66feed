"""Win rates and Bradley–Terry strengths per arm, with their intervals (from :func:`~kling_lab.stats.winrates.win_rates`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kling_lab.stats.winrates import NO_VOTES
from kling_lab.util.text import truncate

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_win_rates(table: pd.DataFrame) -> Figure:
    """Win rate and Bradley–Terry strength per arm with their 95 % bootstrap intervals."""
    from matplotlib.figure import Figure  # matplotlib loads only when a plot is asked for

    groups = list(table.groupby("by", sort=True)) if len(table) else []
    fig = Figure(figsize=(9, 1.2 + 0.45 * max(1, len(table)) + 0.6 * len(groups)), layout="constrained")
    if not groups:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, table.attrs.get("message", NO_VOTES), ha="center", va="center", wrap=True)
        ax.set_axis_off()
        return fig
    axes = fig.subplots(
        len(groups), 2, squeeze=False, gridspec_kw={"height_ratios": [max(1, len(g)) for _, g in groups]}
    )
    for (by, group), (ax_rate, ax_bt) in zip(groups, axes):
        group = group.iloc[::-1]  # strongest on top
        names = [truncate(a, 30) for a in group["arm"].astype(str)]
        y = np.arange(len(group))
        for ax, col, title, ref in (
            (ax_rate, "win_rate", "win rate (ties = ½)", 0.5),
            (ax_bt, "strength", "Bradley–Terry strength (sum 1)", 1 / len(group)),
        ):
            mid = group[col].to_numpy(float)
            err = np.vstack([mid - group[f"{col}_low"].to_numpy(float), group[f"{col}_high"].to_numpy(float) - mid])
            ax.errorbar(mid, y, xerr=np.clip(err, 0, None), fmt="o", capsize=4)
            ax.axvline(ref, color="grey", lw=0.8, ls="--")
            ax.set_yticks(y, names if ax is ax_rate else [""] * len(y))
            ax.set_xlim(0, 1)
            ax.set_title(f"{by}: {title}", fontsize=10)
        ax_rate.set_xlabel(f"n = {int(group['n'].sum() // 2)} votes; bars: 95 % bootstrap")
    return fig
