"""Where the time went: queue, inference and download seconds, per run or averaged per parameter value."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from kling_lab.plots._common import (
    check_runs,
    label,
    legend_outside,
    matches,
    new_figure,
    ordered_values,
    require_rows,
    value_label,
)

PHASES = {
    "queue_s": ("waiting in fal's queue", "tab:gray"),
    "inference_s": ("inference", "tab:purple"),
    "download_s": ("downloading the video", "tab:cyan"),
}


def latency_split(df: pd.DataFrame, by: str | None = None) -> Figure:
    """Stacked bars of ``queue_s`` + ``inference_s`` + ``download_s``: one bar per run in log order, or
    with ``by`` one bar per value of that column holding the mean over its runs (annotated with n).

    A phase a run did not reach (e.g. no download after a failure) counts as 0 s. Runs with no timing at
    all (cache hits, budget skips) are left out."""
    who = "latency_split"
    check_runs(df, [*PHASES, *([by] if by else [])], who)
    timed = df[df[list(PHASES)].notna().any(axis=1)]
    require_rows(timed, who, "no run has queue_s, inference_s or download_s (cache hits and skips have none)")
    seconds = timed[list(PHASES)].fillna(0.0)
    if by is None:
        heights, positions = seconds, np.arange(1, len(timed) + 1)
        ticks, counts = None, None
        xlabel = "run (log order, 1 = oldest)"
        title = f"Latency of {len(timed)} runs (mean total {seconds.sum(axis=1).mean():.1f} s)"
    else:
        values = ordered_values(timed[by])
        heights = pd.DataFrame([seconds[matches(timed[by], v)].mean() for v in values])
        counts = [int(matches(timed[by], v).sum()) for v in values]
        positions, ticks = np.arange(len(values)), [value_label(v) for v in values]
        xlabel, title = label(by), f"Mean latency by {by}"
    fig = new_figure(max(5.0, min(14.0, 0.25 * len(positions) + 3)), 4.2)
    ax = fig.add_subplot()
    bottom = np.zeros(len(positions))
    for phase, (meaning, colour) in PHASES.items():
        height = heights[phase].to_numpy()
        bars = ax.bar(positions, height, bottom=bottom, color=colour, label=f"{phase}: {meaning}")
        bottom += height
    if counts is not None:
        ax.bar_label(bars, labels=[f"n={n}" for n in counts], fontsize=8, padding=2)
        ax.margins(y=0.12)
    if ticks is not None:
        ax.set_xticks(positions, ticks)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("seconds (mean per bar)" if by else "seconds")
    ax.set_title(title)
    legend_outside(ax, title="phase")
    return fig
