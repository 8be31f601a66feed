"""Picking sweeps out of a runs DataFrame: the list of sweeps, the latest one, one by id."""

from __future__ import annotations

import pandas as pd

from kling_lab.errors import InvalidInput


def latest_sweep_id(runs: pd.DataFrame) -> str:
    """The sweep_id of the most recently logged run (``runs`` must not be empty)."""
    return str(runs["sweep_id"].iloc[runs["logged_at"].argmax()])


def sweeps(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per sweep in ``runs`` (newest first): its name, runs, ok runs, USD and last log time."""
    table = runs.groupby("sweep_id", sort=False, dropna=False).agg(
        experiment=("experiment", "first"),
        runs=("run_id", "size"),
        ok=("status", lambda s: int((s == "ok").sum())),
        usd=("cost_usd", "sum"),
        last_logged=("logged_at", "max"),
    )
    return table.sort_values("last_logged", ascending=False)


def pick_sweep(runs: pd.DataFrame, sweep_id: str | None = None) -> pd.DataFrame:
    """The runs of ``sweep_id``, or of the sweep logged last when it is None."""
    if runs.empty:
        raise InvalidInput("no runs in this store yet: run a sweep first (kling_lab.run or notebooks/sweep.ipynb)")
    if sweep_id is None:
        sweep_id = latest_sweep_id(runs)
    picked = runs[(runs["sweep_id"] == sweep_id).fillna(False).astype(bool)]
    if picked.empty:
        known = ", ".join(str(s) for s in runs["sweep_id"].dropna().unique()[:5])
        raise InvalidInput(f"no sweep {sweep_id!r} in these runs; sweeps here include: {known}")
    return picked.reset_index(drop=True)


__all__ = ["latest_sweep_id", "pick_sweep", "sweeps"]
