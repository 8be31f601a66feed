"""A paid video's download into the store's ``tmp/``, named by its request id.

The name is what makes a kill harmless: a verified download left in ``tmp/dl-<request id>.mp4``
(before or after its ``downloaded`` journal event) is used by the resume instead of being
fetched again."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

from kling_lab.errors import DownloadError
from kling_lab.media.download import Downloaded, check_playable, download
from kling_lab.store.run_store import RunStore
from kling_lab.util.hashing import sha256_file


async def fetch_to_tmp(
    http: httpx.AsyncClient, store: RunStore, request_id: str, url: str, max_bytes: int
) -> Downloaded:
    """One download attempt into ``.part``; verified, it is renamed to its request-id name."""
    final = store.download_path(request_id)
    part = final.with_name(final.name + ".part")
    try:
        fetched = await download(http, url, part, max_bytes=max_bytes)
        os.replace(part, final)
    except OSError as exc:  # our disk, not fal: the paid video stays collectable
        part.unlink(missing_ok=True)
        raise DownloadError(f"could not write the video here: {exc}", error_type="disk_error") from exc
    return Downloaded(final, fetched.sha256, fetched.bytes, fetched.seconds)


def left_download(store: RunStore, request_id: str) -> Downloaded | None:
    """A verified download a killed process left in tmp/ before journaling it: use it."""
    path = store.download_path(request_id)
    if not path.is_file():
        return None
    try:
        check_playable(path)
    except DownloadError:
        return None
    return Downloaded(path, sha256_file(path), path.stat().st_size, 0.0)


def ingest_left_download(store: RunStore, request_id: str, facts: Mapping[str, Any]) -> bool:
    """A verified download a killed process left in tmp/ (journaled, not yet moved): move it in."""
    path = store.download_path(request_id)
    sha = facts.get("video_sha256")
    if not path.is_file() or not isinstance(sha, str):
        return False
    try:
        if sha256_file(path) != sha:
            path.unlink(missing_ok=True)
            return False
        check_playable(path)
        store.ingest_video(path, sha)
    except (DownloadError, OSError):
        return False
    return True


def remove_stale_downloads(store: RunStore, pending_request_ids: set[str]) -> None:
    """Remove request-named downloads in tmp/ whose request no longer waits for them."""
    tmp = store.tmp_dir
    if not tmp.is_dir():
        return
    keep = {store.download_path(rid).name for rid in pending_request_ids}
    for path in tmp.glob("dl-*"):
        if path.name.removesuffix(".part") not in keep:
            path.unlink(missing_ok=True)


__all__ = ["fetch_to_tmp", "ingest_left_download", "left_download", "remove_stale_downloads"]
