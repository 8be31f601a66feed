"""Does a parameter move a metric more than repeats do? Mean ± error bars per value, one line per hue."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from kling_lab.plots._common import (
    check_runs,
    fresh_ok,
    label,
    matches,
    new_figure,
    ordered_values,
    require_rows,
    value_label,
)

# Two-sided 95 % Student t quantiles t(0.975, df) for df = 1…30; beyond that the normal 1.96 is close enough.
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)
ERRORS = {"ci95": "mean ± 95 % CI (Student t)", "se": "mean ± 1 standard error"}
MEDIA_HINT = "; kling_lab.backfill(store) computes probe/QC columns of runs logged without them"


def metric_vs_param(
    df: pd.DataFrame,
    metric: str = "qc_motion",
    param: str = "cfg_scale",
    hue: str | None = "negative_prompt",
    error: Literal["ci95", "se"] = "ci95",
) -> Figure:
    """``metric`` against ``param``: one line per value of ``hue``, each point the mean over the ok runs
    (repeats and any other parameters) at that value, with ``error`` bars (95 % CI or ±1 SE; the
    legend says which). Cache hits are left out: they repeat their source clip's metrics.
    Bars that overlap suggest ``param`` moves ``metric`` no more than repeats do; for a test of
    exactly that, see :func:`kling_lab.effect.effect`."""
    who = "metric_vs_param"
    if error not in ERRORS:
        raise ValueError(f"{who}: error must be one of {sorted(ERRORS)}, got {error!r}")
    check_runs(df, [metric, param, "status", *([hue] if hue else [])], who)
    if not pd.api.types.is_numeric_dtype(df[metric]):
        raise ValueError(f"{who}: {metric!r} is not a numeric column")
    data = fresh_ok(df)
    data = data[data[metric].notna() & data[param].notna()]
    require_rows(
        data,
        who,
        f"no ok run has both {metric!r} and {param!r}"
        + (MEDIA_HINT if metric.startswith("qc_") or metric in ("fps", "frames") else ""),
    )
    numeric = pd.api.types.is_numeric_dtype(data[param])
    values = ordered_values(data[param])
    x = np.asarray(values, dtype=float) if numeric else np.arange(len(values), dtype=float)
    hues = ordered_values(data[hue]) if hue else [None]
    step = float(np.min(np.diff(x))) if len(x) > 1 else 1.0
    fig = new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    sizes: list[int] = []
    for i, hue_value in enumerate(hues):
        mine = data[matches(data[hue], hue_value)] if hue else data
        stats = [_mean_error(mine.loc[matches(mine[param], v), metric].to_numpy(float), error) for v in values]
        mean, err, n = (np.array(col, dtype=float) for col in zip(*stats))
        shown = n > 0
        sizes.extend(n[shown].astype(int))
        offset = (i - (len(hues) - 1) / 2) * 0.04 * step  # dodge, so error bars do not hide each other
        ax.errorbar(
            x[shown] + offset,
            mean[shown],
            yerr=err[shown],
            marker="o",
            capsize=3,
            linestyle="-" if numeric else "none",  # no line between unordered categories
            label=value_label(hue_value) if hue else metric,
        )
    if not numeric:
        ax.set_xticks(x, [value_label(v) for v in values])
    ax.set_xlabel(label(param))
    ax.set_ylabel(f"{label(metric)}\n{ERRORS[error]}")
    n_text = f"{min(sizes)}" if min(sizes) == max(sizes) else f"{min(sizes)}–{max(sizes)}"
    ax.set_title(f"{metric} vs {param} (n = {n_text} runs per point)")
    ax.legend(title=f"{hue}: {ERRORS[error]}" if hue else ERRORS[error], fontsize=8, title_fontsize=8)
    return fig


def _mean_error(values: np.ndarray, error: str) -> tuple[float, float, int]:
    """Mean, error-bar half-width (NaN with fewer than 2 values) and count of ``values``."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(values[0]), math.nan, 1
    se = float(values.std(ddof=1)) / math.sqrt(n)
    return float(values.mean()), se * (_t975(n - 1) if error == "ci95" else 1.0), n


def _t975(dof: int) -> float:
    return _T975[dof - 1] if dof <= len(_T975) else 1.96
