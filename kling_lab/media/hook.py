"""The default media hook: probe + QC columns for a downloaded video (used at download and by backfill)."""

from __future__ import annotations

from typing import Any

from kling_lab.media.probe import probe
from kling_lab.media.qc import compute_qc


def default_media_hook(path: str) -> dict[str, Any]:
    """Probe and QC columns of the video at ``path`` (see ``kling_lab.store.schema``)."""
    return {**probe(path), **compute_qc(path)}


__all__ = ["default_media_hook"]
