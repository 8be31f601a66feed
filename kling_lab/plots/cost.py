"""Where the money went: spend by parameter value, and cumulative spend over time."""

from __future__ import annotations

from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from kling_lab.plots._common import (
    CACHE,
    OUTCOME_COLORS,
    check_runs,
    label,
    legend_outside,
    matches,
    new_figure,
    ordered_values,
    outcomes,
    require_rows,
    usd,
    value_label,
)
from kling_lab.request import price_usd

# Bars per parameter value; skipped_budget runs were never submitted, so they neither cost nor save.
SPEND_OUTCOMES = ("ok", "failed", "cancelled", CACHE)


def cost_by_param(df: pd.DataFrame, param: str = "cfg_scale") -> Figure:
    """Grouped bars per value of ``param``: USD spent on ok and on failed/cancelled runs, and USD saved
    by cache hits (what they would have cost; hatched). Each bar is annotated with its run count."""
    who = "cost_by_param"
    check_runs(df, [param, "status", "cost_usd", "cache_hit", "duration_s"], who)
    outcome = outcomes(df)
    dollars = df["cost_usd"].fillna(0.0).where(outcome != CACHE, df["duration_s"].map(_price))
    present = [o for o in SPEND_OUTCOMES if (outcome == o).any()]
    require_rows(df[outcome.isin(present)], who, "every run was skipped by the budget (nothing spent or saved)")
    values = ordered_values(df[param])
    x = np.arange(len(values))
    width = 0.8 / len(present)
    fig = new_figure(min(14.0, max(6.0, 0.5 * len(values) * len(present) + 3)), 4.2)
    ax = fig.add_subplot()
    for i, name in enumerate(present):
        mine = outcome == name
        heights = [dollars[mine & matches(df[param], v)].sum() for v in values]
        counts = [int((mine & matches(df[param], v)).sum()) for v in values]
        tag = "saved, \\$0 spent" if name == CACHE else "spent"
        bars = ax.bar(
            x + (i - (len(present) - 1) / 2) * width,
            heights,
            width,
            color=OUTCOME_COLORS[name],
            hatch="//" if name == CACHE else None,
            alpha=0.6 if name == CACHE else 1.0,
            label=f"{name} (USD {tag})",
        )
        ax.bar_label(bars, labels=[f"n={c}" if c else "" for c in counts], fontsize=8, padding=2)
    ax.set_xticks(x, [value_label(v) for v in values])
    ax.set_xlabel(label(param))
    ax.set_ylabel("USD per parameter value")
    ax.margins(y=0.15)
    spent, saved = df["cost_usd"].fillna(0.0).sum(), dollars[outcome == CACHE].sum()
    ax.set_title(f"Spend by {param}: {usd(spent)} spent, {usd(saved)} saved by the cache")
    legend_outside(ax, title="outcome (n = runs)")
    return fig


def cumulative_spend(df: pd.DataFrame, by: str = "experiment") -> Figure:
    """USD spent so far against ``logged_at`` (UTC), one step line per value of ``by`` (e.g.
    ``experiment``, ``sweep_id`` or ``backend``) and a dashed total when there are several."""
    who = "cumulative_spend"
    check_runs(df, ["logged_at", "cost_usd", by], who)
    data = df[df["logged_at"].notna()]
    require_rows(data, who, "no run has a logged_at time")
    when = data["logged_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    cost = data["cost_usd"].fillna(0.0)
    fig = new_figure(7.5, 4.2)
    ax = fig.add_subplot()
    groups = ordered_values(data[by])
    for value in groups:
        mine = matches(data[by], value)
        _step(ax, when[mine], cost[mine], label=f"{value_label(value)} ({usd(cost[mine].sum())})")
    if len(groups) > 1:
        _step(ax, when, cost, label=f"all ({usd(cost.sum())})", color="black", linestyle="--", linewidth=1)
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel("time logged (UTC)")
    ax.set_ylabel("cumulative spend (USD)")
    ax.set_title(f"Cumulative spend by {by}")
    legend_outside(ax, title=by)
    return fig


def _step(ax: Axes, when: pd.Series, cost: pd.Series, **style: Any) -> None:
    """One cumulative-spend step line, starting at $0 just before its first run."""
    order = np.argsort(when.to_numpy(), kind="stable")
    times = when.to_numpy()[order]
    totals = cost.to_numpy()[order].cumsum()
    ax.step(np.concatenate([times[:1], times]), np.concatenate([[0.0], totals]), where="post", **style)


def _price(duration_s: Any) -> float:
    return 0.0 if pd.isna(duration_s) else price_usd(int(duration_s))
