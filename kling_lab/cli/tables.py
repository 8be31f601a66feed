"""Readable text tables of a runs DataFrame (for the terminal and quick looks)."""

from __future__ import annotations

import pandas as pd

from kling_lab.util.money import spent_text
from kling_lab.util.text import truncate

RUNS_COLUMNS = [
    "logged_at",
    "experiment",
    "backend",
    "status",
    "cfg_scale",
    "aspect_ratio",
    "duration_s",
    "negative_prompt",
    "repeat",
    "cost_usd",
    "total_s",
    "error_type",
]


def _short(text: object, width: int = 24) -> str:
    if text is None or text is pd.NA or (isinstance(text, float) and pd.isna(text)):
        return ""
    text = str(text)
    return truncate(text, width)


def runs_table(df: pd.DataFrame, limit: int = 20) -> str:
    """The most recent ``limit`` runs, one line each, plus totals."""
    recent = df.tail(limit).copy()
    view = pd.DataFrame(
        {
            "when (UTC)": recent["logged_at"].dt.strftime("%m-%d %H:%M:%S"),
            "sweep": recent["experiment"].map(lambda s: _short(s, 16)),
            "backend": recent["backend"],
            "status": [
                ("cache" if (hit is not pd.NA and bool(hit)) else status)
                for status, hit in zip(recent["status"], recent["cache_hit"])
            ],
            "cfg": recent["cfg_scale"].map(lambda v: f"{v:.2f}"),
            "aspect": recent["aspect_ratio"],
            "dur": recent["duration_s"].astype("string") + "s",
            "negative prompt": recent["negative_prompt"].map(lambda s: _short(s) if s else "(none)"),
            "rep": recent["repeat"],
            "cost": recent["cost_usd"].map(lambda v: f"${v:.2f}"),
            "total": recent["total_s"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}s"),
            "error": recent["error_type"].map(_short),
        }
    )
    lines = [view.to_string(index=False)]
    by_status = df["status"].value_counts().to_dict()
    counts = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
    lines.append(f"{len(df)} runs ({counts}); showing the last {len(recent)}; total {spent_text(df)}")
    return "\n".join(lines)
