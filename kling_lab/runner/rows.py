"""Building run-log rows (plain dicts in the schema's columns)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from kling_lab._version import __version__
from kling_lab.models import ModelRequest
from kling_lab.store.schema import PROBE_COLUMNS, QC_COLUMNS
from kling_lab.util.clock import utcnow
from kling_lab.util.text import canonical_json


def current_user() -> str:
    """``$KLING_LAB_USER``, else the login name (for per-person spend in a shared store)."""
    import getpass
    import os

    try:
        return os.environ.get("KLING_LAB_USER") or getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


def new_run_id() -> str:
    return uuid.uuid4().hex


def base_row(
    *, request: ModelRequest, fingerprint: str, repeat: int, sweep_meta: Mapping[str, Any], backend: str
) -> dict[str, Any]:
    """The columns every row of a request has, whatever its outcome (a re-attached request's
    image digests come from its journal entry: its arguments hold the uploaded URLs)."""
    row = {
        "run_id": new_run_id(),
        "sweep_id": sweep_meta.get("sweep_id"),
        "experiment": sweep_meta.get("experiment"),
        "sweep_index": sweep_meta.get("sweep_index"),
        "fingerprint": fingerprint,
        "endpoint": request.endpoint_id,
        "backend": backend,
        **request.columns(),
        "arguments_json": canonical_json(request.arguments()),
        "repeat": repeat,
        "cache_hit": False,
        "cost_usd": 0.0,
        "notebook": sweep_meta.get("notebook"),
        "params_json": sweep_meta.get("params_json"),
        "kling_lab_version": __version__,
        "user": current_user(),
    }
    for key in ("image_sha256", "end_image_sha256"):
        if row.get(key) is None and sweep_meta.get(key) is not None:
            row[key] = sweep_meta[key]
    return row


def cache_hit_row(row: dict[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """A row reusing ``source``'s video: status ok, cost 0, pointer to the original run."""
    copied = {
        k: source.get(k)
        for k in ("request_id", "video_url", "video_path", "video_sha256", "video_bytes", *PROBE_COLUMNS, *QC_COLUMNS)
    }
    return {
        **row,
        **copied,
        "status": "ok",
        "cache_hit": True,
        "cost_usd": 0.0,
        "source_run_id": source.get("source_run_id") or source.get("run_id"),
        "logged_at": utcnow(),
    }


def final_skip_row(row: dict[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """A $0 ``skipped_final`` row: ``source`` (an earlier row of the same request) was refused by fal
    for its input, so a re-run does not submit it again (``--retry-failed`` does)."""
    when = source.get("logged_at")
    date = f" on {when:%Y-%m-%d}" if hasattr(when, "strftime") else ""
    error = (
        f"not submitted again: fal refused this input{date} ({source.get('error_type')}: "
        f"{str(source.get('error') or '')[:300]}); --retry-failed submits it"
    )
    return {
        **row,
        "status": "skipped_final",
        "error_type": source.get("error_type"),
        "error": error,
        "cost_usd": 0.0,
        "source_run_id": source.get("run_id"),
        "logged_at": utcnow(),
    }


def tags_json(*tag_maps: Mapping[str, Any] | None) -> str | None:
    merged: dict[str, Any] = {}
    for tags in tag_maps:
        merged.update(tags or {})
    return json.dumps(merged, sort_keys=True, default=str) if merged else None
