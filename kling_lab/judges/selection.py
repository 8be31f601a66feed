"""Which clips (or pairs of clips) a judging pass looks at.

A clip is an ``ok`` run whose video is in the store, once per video (a cache-hit run shares its
source's video, so it shares its judgement). Its fal result URL goes along when the run was made on
the judging backend less than :data:`URL_MAX_AGE_S` ago: the runner sends that URL instead of
uploading the file when it still answers. Pairs (for a pairwise judge) are the pairs you voted on,
or, with ``by``, every pair of clips sharing a prompt from different arms of ``by``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd

from kling_lab.errors import InvalidInput
from kling_lab.judges.base import clip_seconds
from kling_lab.runner.judge_call import Clip
from kling_lab.store.run_store import RunStore
from kling_lab.util.clock import utcnow

URL_MAX_AGE_S = 6 * 24 * 3600.0  # fal keeps output media at least 7 days (its FAQ, read late 2026)


@dataclass(frozen=True)
class Judged:
    """What one call shows: the runs' rows and their clips (same order)."""

    runs: tuple[Mapping[str, Any], ...]
    clips: tuple[Clip, ...]


def _records(runs: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): (None if _missing(v) else v) for k, v in r.items()} for r in runs.to_dict("records")]


def _missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def clips(runs: pd.DataFrame, store: RunStore, backend: str) -> tuple[dict[str, tuple[dict[str, Any], Clip]], int]:
    """video sha256 → (a run showing it, its clip), and how many ok runs had no video in the store."""
    found: dict[str, tuple[dict[str, Any], Clip]] = {}
    missing = 0
    rows = [r for r in _records(runs) if r.get("status") == "ok"]
    rows.sort(key=lambda r: bool(r.get("cache_hit")))  # the run that made the video first
    for row in rows:
        sha = row.get("video_sha256")
        if not sha or not row.get("video_path"):
            missing += 1
            continue
        if sha in found:
            continue
        try:
            path = store.video_file(row["video_path"])
        except (FileNotFoundError, OSError):
            missing += 1
            continue
        found[sha] = (row, Clip(str(row["run_id"]), str(sha), str(path), clip_seconds(row), _live_url(row, backend)))
    return found, missing


def _live_url(row: Mapping[str, Any], backend: str) -> str | None:
    url, when = row.get("video_url"), row.get("completed_at") or row.get("logged_at")
    if not url or row.get("backend") != backend or when is None:
        return None
    try:
        fresh = utcnow() - pd.Timestamp(when).to_pydatetime() < timedelta(seconds=URL_MAX_AGE_S)
    except (TypeError, ValueError):
        return None
    return str(url) if fresh else None


def singles(runs: pd.DataFrame, store: RunStore, backend: str) -> tuple[list[Judged], int]:
    """One call per distinct clip; refuses (one line) a selection without any clip."""
    found, missing = clips(runs, store, backend)
    if not found:
        raise InvalidInput(
            f"no run with a video to judge ({len(runs)} runs selected, {missing} ok without a video in the store); "
            "judge ok runs whose videos are in the store"
        )
    return [Judged((row,), (clip,)) for row, clip in found.values()], missing


def _pair(a: tuple[dict[str, Any], Clip], b: tuple[dict[str, Any], Clip]) -> Judged:
    first, second = sorted((a, b), key=lambda rc: rc[1].sha256)  # one order per pair: cached once
    return Judged((first[0], second[0]), (first[1], second[1]))


def voted_pairs(runs: pd.DataFrame, votes: pd.DataFrame, store: RunStore, backend: str) -> tuple[list[Judged], int]:
    """Every voted pair whose two clips are in ``runs`` and the store (once per pair of videos)."""
    found, _ = clips(runs, store, backend)
    by_run = {rc[0]["run_id"]: rc for rc in found.values()}
    by_run.update({r["run_id"]: found[r["video_sha256"]] for r in _records(runs) if r.get("video_sha256") in found})
    pairs: dict[tuple[str, str], Judged] = {}
    skipped = 0
    for vote in votes.to_dict("records") if len(votes) else []:
        a, b = by_run.get(vote.get("left_run_id")), by_run.get(vote.get("right_run_id"))
        if a is None or b is None or a[1].sha256 == b[1].sha256:
            skipped += 1
            continue
        judged = _pair(a, b)
        pairs.setdefault((judged.clips[0].sha256, judged.clips[1].sha256), judged)
    if not pairs:
        raise InvalidInput(
            f"no voted pair with both videos in the store ({len(votes)} votes); vote first (kl.ab) or give by= "
            "to pair clips of one prompt across arms"
        )
    return list(pairs.values()), skipped


def arm_pairs(runs: pd.DataFrame, by: str, store: RunStore, backend: str) -> tuple[list[Judged], int]:
    """Every pair of clips with the same prompt from different values of ``by``."""
    if by not in runs.columns:
        raise InvalidInput(f"by: no column {by!r} in the runs")
    found, missing = clips(runs, store, backend)
    groups: dict[Any, list[tuple[dict[str, Any], Clip]]] = {}
    for rc in found.values():
        groups.setdefault(rc[0].get("prompt"), []).append(rc)
    pairs: dict[tuple[str, str], Judged] = {}
    for members in groups.values():
        for a, b in itertools.combinations(members, 2):
            if _key(a[0].get(by)) != _key(b[0].get(by)):
                judged = _pair(a, b)
                pairs.setdefault((judged.clips[0].sha256, judged.clips[1].sha256), judged)
    if not pairs:
        raise InvalidInput(f"no two clips with the same prompt and different {by} to pair")
    return list(pairs.values()), missing


def _key(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def select_runs(runs: pd.DataFrame | None, store: RunStore, sweep_id: str | None) -> pd.DataFrame:
    """The runs to judge: ``runs`` as given, else the store's (one sweep's with ``sweep_id``)."""
    if runs is None:
        runs = store.load(judgements=False)
    if not isinstance(runs, pd.DataFrame):
        raise InvalidInput(f"runs: expected a DataFrame from kl.load_runs; got {type(runs).__name__}")
    if sweep_id is not None:
        if "sweep_id" not in runs.columns or not (runs["sweep_id"] == sweep_id).fillna(False).any():
            known = ", ".join(str(s) for s in runs.get("sweep_id", pd.Series(dtype=str)).dropna().unique()[:5])
            raise InvalidInput(
                f"no sweep {sweep_id!r} in these runs" + (f"; sweeps here include: {known}" if known else "")
            )
        runs = runs[(runs["sweep_id"] == sweep_id).fillna(False).astype(bool)]
    needed = {"run_id", "status", "video_sha256", "video_path"} - set(runs.columns)
    if needed:
        raise InvalidInput(f"runs: missing columns {sorted(needed)}; pass a DataFrame from kl.load_runs")
    return runs


__all__ = ["URL_MAX_AGE_S", "Judged", "arm_pairs", "clips", "select_runs", "singles", "voted_pairs"]
