"""What a grid cell says about its run: parameters, cost, latency, probe, QC metrics, failures.

Only facts present in the row are shown (``qc_*`` and latency columns may be null). A run that
did not end ``ok`` gets its status and error text instead of a video; an ``ok`` run whose file is
gone is flagged ``missing``. Everything returned is plain text: the front end inserts it with
``textContent`` and the report escapes it, so user text (prompts, errors) is never markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kling_lab.store.schema import PARAM_COLUMNS, QC_COLUMNS
from kling_lab.views.values import label

LATENCY = (("queue_s", "queue"), ("inference_s", "inference"), ("download_s", "download"))


JUDGE_DOC = (
    "a judge's score (kl.judge: judge_<name>_<dimension>; a list dimension counts its items); "
    "on the emulator a PLACEHOLDER, not a model's opinion"
)


def metric_name(column: str) -> str:
    """``qc_black_frames`` → ``black frames``; ``judge_vlm_prompt_adherence`` → ``judge vlm prompt adherence``."""
    return column.removeprefix("qc_").replace("_", " ")


def is_judge_score(column: str) -> bool:
    """A ``judge_<name>_<dimension>`` score column (not its items or explanation text)."""
    return column.startswith("judge_") and not column.endswith(("_items", "_explanation"))


def metric_columns(columns: Iterable[str]) -> list[str]:
    """The QC metrics present, then the judges' score columns (from ``load_runs``)."""
    present = [str(c) for c in columns]
    return [c for c in QC_COLUMNS if c in present] + sorted(c for c in present if is_judge_score(c))


def param_text(row: Mapping[str, Any], columns: Sequence[str], width: int = 40) -> str:
    """``cfg_scale=0.5 · aspect_ratio=16:9`` for the given columns (prompts shortened)."""
    return " · ".join(f"{c}={label(row.get(c), width)}" for c in columns)


def cost_latency_text(row: Mapping[str, Any]) -> str:
    """``$1.40 · queue 0.1 s · inference 3.2 s · download 0.4 s`` (only the parts present)."""
    parts = []
    cost = row.get("cost_usd")
    if cost is not None:
        parts.append(f"${cost:.2f}" + (" (cache hit)" if row.get("cache_hit") else ""))
    parts += [f"{name} {row[col]:.1f} s" for col, name in LATENCY if row.get(col) is not None]
    return " · ".join(parts)


def probe_text(row: Mapping[str, Any]) -> str:
    """``1280×720 · 24 fps · 5.0 s`` (only the parts present)."""
    parts = []
    if row.get("width") and row.get("height"):
        parts.append(f"{row['width']}×{row['height']}")
    if row.get("fps"):
        parts.append(f"{row['fps']:g} fps")
    if row.get("video_duration_s") is not None:
        parts.append(f"{row['video_duration_s']:.1f} s")
    return " · ".join(parts)


def metrics(row: Mapping[str, Any]) -> list[list[str]]:
    """``[[name, value], …]`` for the QC metrics and judge scores this row has (meanings: ``metric_docs()``)."""
    return [
        [metric_name(col), f"{row[col]:.3g}"]
        for col in metric_columns(row)
        if isinstance(row.get(col), (int, float)) and not isinstance(row.get(col), bool) and row[col] == row[col]
    ]


def metric_docs(columns: Iterable[str] = ()) -> dict[str, str]:
    """Each metric's short name → its definition (``kling_lab.qc.METRICS``; PyAV loads on first call),
    plus the judge score ``columns`` given."""
    from kling_lab.media.qc import METRICS

    docs = {metric_name(col): doc for col, doc in METRICS.items()}
    docs.update({metric_name(c): JUDGE_DOC for c in columns if is_judge_score(str(c))})
    return docs


def failure_text(row: Mapping[str, Any]) -> str | None:
    """Why a run has no video (None for ``ok`` runs)."""
    status = row.get("status") or "unknown"
    if status in ("ok", "pending"):  # pending: a live grid's job that has no row yet
        return None
    reason = ": ".join(str(x) for x in (row.get("error_type"), row.get("error")) if x)
    if not reason and status == "skipped_budget":
        reason = "not submitted: it would have exceeded the budget"
    return f"{status}" + (f" — {reason}" if reason else "")


def missing_text(row: Mapping[str, Any], video: Path | None) -> str | None:
    """A flag for an ``ok`` run whose video file cannot be found (None when it is there)."""
    if row.get("status") != "ok" or video is not None:
        return None
    where = row.get("video_path")
    return f"video file missing: {where}" if where else "video file missing: the run log has no video_path"


def aspect(row: Mapping[str, Any]) -> float:
    """Width / height of the run's clip: probed size, else the requested aspect ratio, else 16:9."""
    width, height = row.get("width"), row.get("height")
    if width and height:
        return round(float(width) / float(height), 4)
    ratio = str(row.get("aspect_ratio") or "16:9")
    try:
        w, h = (float(x) for x in ratio.split(":"))
        return round(w / h, 4)
    except ValueError:
        return round(16 / 9, 4)


def headline(row: Mapping[str, Any], metric: str | None) -> str:
    """The one line under a clip: cost (cache hit or not) and the headline metric, if the row has them."""
    parts = []
    cost = row.get("cost_usd")
    if cost is not None:
        parts.append("cache hit ($0)" if row.get("cache_hit") else f"${cost:.2f}")
    if metric and row.get(metric) is not None:
        parts.append(f"{metric_name(metric)} {row[metric]:.3g}")
    return " · ".join(parts)


def card(
    row: Mapping[str, Any],
    *,
    facet_columns: Sequence[str],
    video: Path | None,
    differing: Sequence[str] = (),
    metric: str | None = None,
) -> dict[str, Any]:
    """The text of one cell (no URLs).

    ``title``: only the parameters that differ between cells (``differing``, minus the facets, which
    the row and column headers show); ``meta``: one short line (cost, headline ``metric``); ``facts``
    and ``metrics``: the details, folded away by the front end; failure/missing flags.
    """
    others = [c for c in PARAM_COLUMNS if c not in facet_columns and c != "prompt"]
    facts = [param_text(row, others), cost_latency_text(row), probe_text(row)]
    shown = [c for c in differing if c not in facet_columns]
    return {
        "run_id": row.get("run_id"),
        "key": row.get("fingerprint") or row.get("run_id"),
        "status": row.get("status") or "unknown",
        "title": param_text(row, shown),
        "meta": headline(row, metric),
        "facts": [f for f in facts if f],
        "metrics": metrics(row),
        "error": failure_text(row),
        "missing": missing_text(row, video),
        "prompt": row.get("prompt") or "",
        "duration": row.get("video_duration_s") or row.get("duration_s"),
        "aspect": aspect(row),
    }
