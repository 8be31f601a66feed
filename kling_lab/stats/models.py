"""The per-model table: what a usable clip costs, how often requests fail, how long they take.

``model_table(df)`` is the first thing to look at after a cross-model sweep::

    kl.model_table(kl.load_runs())
    #                 requests  ok  failed  failure_rate  spent_usd  usd_per_ok_clip  median_s  p90_s  ...
    # kling-2.0-master       4   4       0          0.00       5.60             1.40     212.0  260.3

Counted: requests that reached fal (``ok`` or ``failed``; cache hits, cancelled and budget-skipped
rows are shown apart). ``usd_per_ok_clip`` is everything spent on a model divided by its ok clips,
so failures that were billed make good clips dearer. Latency is over ok requests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kling_lab.errors import InvalidInput

COLUMNS = [
    "requests",
    "ok",
    "failed",
    "failure_rate",
    "spent_usd",
    "usd_per_ok_clip",
    "median_s",
    "p90_s",
    "median_queue_s",
    "median_inference_s",
    "cache_hits",
    "cancelled",
    "skipped_budget",
]


def model_table(runs: pd.DataFrame, *, by: str = "model") -> pd.DataFrame:
    """One row per ``by`` value (default: per model): requests, failure rate, dollars per ok clip, latency."""
    if by not in runs.columns:
        raise InvalidInput(f"model_table: no column {by!r} in the runs DataFrame")
    if runs.empty:
        return pd.DataFrame(columns=COLUMNS).rename_axis(by)
    hit = runs["cache_hit"].fillna(False).astype(bool) if "cache_hit" in runs else pd.Series(False, index=runs.index)
    status = runs["status"].astype("string")
    keys = runs[by].astype("string").fillna("(none)")
    rows = {}
    for key, group in runs.groupby(keys, sort=True):
        fresh = ~hit.loc[group.index]
        st = status.loc[group.index]
        ok = int(((st == "ok") & fresh).sum())
        failed = int(((st == "failed") & fresh).sum())
        spent = float(group["cost_usd"].fillna(0).sum())
        total = group.loc[(st == "ok") & fresh, "total_s"].astype(float)
        rows[key] = {
            "requests": ok + failed,
            "ok": ok,
            "failed": failed,
            "failure_rate": failed / (ok + failed) if ok + failed else np.nan,
            "spent_usd": round(spent, 2),
            "usd_per_ok_clip": round(spent / ok, 4) if ok else np.nan,
            "median_s": total.median(),
            "p90_s": total.quantile(0.9) if len(total) else np.nan,
            "median_queue_s": group.loc[(st == "ok") & fresh, "queue_s"].astype(float).median(),
            "median_inference_s": group.loc[(st == "ok") & fresh, "inference_s"].astype(float).median(),
            "cache_hits": int(((st == "ok") & ~fresh).sum()),
            "cancelled": int((st == "cancelled").sum()),
            "skipped_budget": int((st == "skipped_budget").sum()),
        }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=COLUMNS)
    table.index.name = by
    return table


__all__ = ["model_table"]
