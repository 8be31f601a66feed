"""What the run log already knows about a sweep's requests: cached results and final refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kling_lab.runner.outcomes import is_final
from kling_lab.store.run_store import RunStore


def rows_of(store: RunStore, backend_name: str, endpoints: dict[str, str]) -> list[dict[str, Any]]:
    """The rows of these fingerprints (fingerprint → endpoint) on this backend and endpoint."""
    return [
        r
        for r in store.rows_where("fingerprint", endpoints)
        if r["backend"] == backend_name and r["endpoint"] == endpoints[r["fingerprint"]]
    ]


def cached_ok(store: RunStore, backend_name: str, endpoints: dict[str, str]) -> dict[str, dict[str, Any]]:
    """fingerprint → the latest ok row of this backend (and endpoint) whose video is still in the store."""
    found: dict[str, dict[str, Any]] = {}
    candidates = [r for r in rows_of(store, backend_name, endpoints) if r["status"] == "ok"]
    # Remote: one listing instead of a request per video; local: a stat per candidate.
    remote_videos = store.video_keys() if candidates and store.is_remote else None
    for row in sorted(candidates, key=logged_at):
        rel = row.get("video_path")
        if (rel in remote_videos) if remote_videos is not None else store.has_video(rel):
            found[row["fingerprint"]] = row  # the newest ok row wins
    return found


def final_failures(store: RunStore, backend_name: str, endpoints: dict[str, str]) -> dict[str, dict[str, Any]]:
    """fingerprint → its latest row, when that is a refusal fal gave for the input (see runner.outcomes)."""
    latest: dict[str, dict[str, Any]] = {}
    for row in sorted(rows_of(store, backend_name, endpoints), key=logged_at):
        if row.get("cache_hit") or row["status"] == "skipped_final":
            continue  # a skip row repeats an earlier verdict; the verdict itself is kept
        latest[row["fingerprint"]] = row
    return {fp: row for fp, row in latest.items() if row["status"] == "failed" and is_final(row.get("error_type"))}


def logged_at(row: dict[str, Any]) -> datetime:
    return row.get("logged_at") or datetime.min.replace(tzinfo=UTC)


__all__ = ["cached_ok", "final_failures", "logged_at", "rows_of"]
