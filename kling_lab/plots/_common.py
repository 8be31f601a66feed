"""What every plot shares: input checks, axis labels with units, run outcomes, value labels, new figures.

Figures are built with matplotlib's object API (``Figure``/``Axes``), never through pyplot's global
state: nothing is shown or kept alive behind the caller's back, and a notebook displays the returned
``Figure`` like any other value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from kling_lab.util.text import truncate

# Units shown in axis labels (columns not listed are counts or have no unit).
UNITS: dict[str, str] = {
    "cfg_scale": "guidance, 0–1",
    "duration_s": "s",
    "video_duration_s": "s",
    "queue_s": "s",
    "inference_s": "s",
    "total_s": "s",
    "download_s": "s",
    "cost_usd": "USD",
    "width": "px",
    "height": "px",
    "fps": "frames/s",
    "frames": "frames",
    "video_bytes": "bytes",
    "aspect_ratio": "width:height",
    "qc_motion": "luma levels, 0–255",
    "qc_flicker": "luma levels, 0–255",
    "qc_sharpness": "Laplacian variance, levels²",
    "qc_black_frames": "fraction of frames",
    "qc_frozen_frames": "fraction of frame pairs",
    "qc_scene_cuts": "cuts per clip",
}

# A run's outcome for plotting: its status, except that cache hits (status ok, nothing submitted) stand apart.
CACHE = "cache hit"
OUTCOMES = ("ok", CACHE, "failed", "cancelled", "skipped_budget")
OUTCOME_COLORS = {
    "ok": "tab:green",
    CACHE: "tab:blue",
    "failed": "tab:red",
    "cancelled": "tab:gray",
    "skipped_budget": "tab:orange",
}


def label(column: str) -> str:
    """``column (unit)`` when the column has a unit, else the column name."""
    unit = UNITS.get(column)
    return f"{column} ({unit})" if unit else column


def usd(amount: float) -> str:
    """``$1.40`` for matplotlib text (a bare ``$`` would start mathtext)."""
    return f"\\${amount:.2f}"


def check_runs(df: Any, columns: Iterable[str], who: str) -> pd.DataFrame:
    """``df`` if it is a non-empty DataFrame with ``columns``; else a ValueError (TypeError) that says why."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{who}: expected a runs DataFrame (kling_lab.load_runs()), got {type(df).__name__}")
    if df.empty:
        raise ValueError(f"{who}: no runs to plot (the DataFrame is empty)")
    missing = [c for c in dict.fromkeys(columns) if c not in df.columns]
    if missing:
        raise ValueError(
            f"{who}: the DataFrame has no column {', '.join(map(repr, missing))}; "
            "pass a runs DataFrame from kling_lab.load_runs()"
        )
    return df


def require_rows(df: pd.DataFrame, who: str, why: str) -> pd.DataFrame:
    """``df`` unless it is empty, in which case a ValueError saying ``why`` nothing is left to plot."""
    if df.empty:
        raise ValueError(f"{who}: nothing to plot: {why}")
    return df


def cache_hits(df: pd.DataFrame) -> pd.Series:
    """Boolean mask of the cache hits (none when the column is absent)."""
    if "cache_hit" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["cache_hit"].fillna(False).astype(bool)


def outcomes(df: pd.DataFrame) -> pd.Series:
    """Each run's outcome: ``cache hit`` for cache hits, else its status."""
    return df["status"].astype("string").where(~cache_hits(df), CACHE)


def fresh_ok(df: pd.DataFrame) -> pd.DataFrame:
    """The ok runs that produced their own clip (cache hits repeat their source's clip and metrics)."""
    return df[(df["status"] == "ok").fillna(False).astype(bool) & ~cache_hits(df)]


def value_label(value: Any, width: int = 28) -> str:
    """A short, readable label for a parameter value (null, empty string, long prompt, float)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "(null)"
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    if not text:
        return "(none)"
    return truncate(text, width).replace("$", "\\$")  # user text must not switch matplotlib into mathtext


def ordered_values(series: pd.Series) -> list[Any]:
    """Distinct values of ``series``: numbers ascending, text alphabetically, null last."""
    present = series.dropna().unique().tolist()
    ordered = sorted(present) if pd.api.types.is_numeric_dtype(series) else sorted(present, key=str)
    return ordered + ([None] if series.isna().any() else [])


def matches(series: pd.Series, value: Any) -> pd.Series:
    """Boolean mask of ``series == value`` where a null ``value`` matches null entries."""
    return series.isna() if value is None else (series == value).fillna(False).astype(bool)


def new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure with constrained layout, ``width`` × ``height`` inches."""
    return Figure(figsize=(width, height), layout="constrained")


def legend_outside(ax: Axes, **options: Any) -> None:
    """The axes' legend to the right of it, where it cannot hide data (constrained layout makes room)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title_fontsize=8, **options)
