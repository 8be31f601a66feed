"""The faceted grid of runs shared by ``compare`` (widget) and ``report`` (static HTML).

``build_grid`` turns a runs DataFrame into one JSON-able dict that ``grid.js`` renders: the row
and column values of the two facet columns, one cell per run (text from ``labels``, URLs from a
``Source``, a word diff of its prompt), and dropdown filters for the other parameters that vary.
Runs sharing a facet position are stacked (``repeat="stack"``) or picked one repeat at a time
(``repeat="select"``: the ``repeat`` dropdown has no "all" choice).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pandas as pd

from kling_lab.errors import InvalidInput
from kling_lab.store.run_store import RunStore
from kling_lab.store.schema import PARAM_COLUMNS, STATUSES
from kling_lab.util.money import spent_text
from kling_lab.views import labels, promptdiff, values
from kling_lab.views.sources import Source, locate

RepeatMode = Literal["stack", "select"]
FILTER_COLUMNS = [*PARAM_COLUMNS, "sweep_id"]
PROMPT_LABEL_WIDTH = 60


def check_facets(runs: pd.DataFrame, rows: str | None, cols: str | None) -> list[str]:
    """The facet columns in use; a clear error for unknown or repeated ones."""
    facets = [c for c in (rows, cols) if c]
    unknown = [c for c in facets if c not in runs.columns]
    if unknown:
        raise InvalidInput(f"unknown run-log column(s) {unknown}; try one of {PARAM_COLUMNS}")
    if len(facets) == 2 and rows == cols:
        raise InvalidInput(f"rows and cols are both {rows!r}: choose two different columns")
    return facets


def summary_text(runs: pd.DataFrame) -> str:
    """``16 runs · 12 ok · 4 failed · spent $16.80`` (emulator money is worded by ``util.money``)."""
    if runs.empty:
        return "no runs"
    counts = runs["status"].value_counts()
    order = sorted(counts.index, key=lambda s: (STATUSES.index(s) if s in STATUSES else len(STATUSES), str(s)))
    parts = [f"{len(runs)} runs"] + [f"{counts[status]} {status}" for status in order]
    return " · ".join([*parts, spent_text(runs)])


def _axis(records: list[dict[str, Any]], column: str | None) -> list[dict[str, str]]:
    if not column:
        return [{"key": values.key(None), "label": ""}]
    return [
        {"key": values.key(v), "label": values.label(v, PROMPT_LABEL_WIDTH)}
        for v in values.distinct(r.get(column) for r in records)
    ]


def _filters(records: list[dict[str, Any]], facets: list[str], repeat: RepeatMode) -> list[dict[str, Any]]:
    out = []
    for column in FILTER_COLUMNS:
        distinct = values.distinct(r.get(column) for r in records)
        if column in facets or len(distinct) < 2:
            continue
        options = [{"key": values.key(v), "label": values.label(v, PROMPT_LABEL_WIDTH)} for v in distinct]
        out.append({"column": column, "options": options, "all": not (column == "repeat" and repeat == "select")})
    return out


def selection_for(filters: list[dict[str, Any]], wanted: Mapping[str, Any] | None) -> dict[str, str]:
    """The full selection (column → value key) for ``wanted``: plain values (``""``, ``0.25``) or the
    keys the page sends (``'""'``, ``'0.25'``; a key wins when a string is both), ``"*"`` for all.
    Columns not named get their default ("all", or the first repeat with ``repeat="select"``)."""
    selection = {f["column"]: values.ALL if f["all"] else f["options"][0]["key"] for f in filters}
    for column, value in (wanted or {}).items():
        spec = next((f for f in filters if f["column"] == column), None)
        if spec is None:
            raise InvalidInput(
                f"filters: {column!r} does not vary in these runs; filterable: {[f['column'] for f in filters]}"
            )
        keys = [o["key"] for o in spec["options"]] + ([values.ALL] if spec["all"] else [])
        if value == values.ALL or (isinstance(value, str) and value in keys):
            wanted_key = value
        else:
            wanted_key = values.key(value)
        if wanted_key not in keys:
            raise InvalidInput(
                f"filters: {column}={value!r} is not in the data; choose one of {[o['label'] for o in spec['options']]}"
            )
        selection[column] = wanted_key
    return selection


def _cell(
    record: dict[str, Any], facets: list[str], rows: str | None, cols: str | None, source: Source, store: RunStore
) -> dict[str, Any]:
    video = locate(store, record.get("video_path"))
    cell = labels.card(record, facet_columns=facets, video=video)
    playable = video if cell["error"] is None else None
    cell.update(
        row=values.key(record.get(rows) if rows else None),
        col=values.key(record.get(cols) if cols else None),
        params={c: values.key(record.get(c)) for c in FILTER_COLUMNS},
        src=source.video(playable) if playable else None,
        poster=source.poster(playable) if playable else None,
    )
    return cell


def build_grid(
    runs: pd.DataFrame,
    rows: str | None = "cfg_scale",
    cols: str | None = "aspect_ratio",
    *,
    repeat: RepeatMode = "stack",
    filters: Mapping[str, Any] | None = None,
    source: Source,
    store: RunStore,
) -> dict[str, Any]:
    """The grid spec (JSON-able) for ``grid.js``; its ``selection`` is the initial filter choice."""
    if repeat not in ("stack", "select"):
        raise InvalidInput(f"repeat must be 'stack' or 'select'; got {repeat!r}")
    facets = check_facets(runs, rows, cols) if len(runs.columns) else []
    records = [{str(k): values.py(v) for k, v in r.items()} for r in runs.to_dict("records")]
    records.sort(key=lambda r: (values.sort_key(r.get("repeat")), values.sort_key(r.get("sweep_index"))))
    spec_filters = _filters(records, facets, repeat)
    cells = [_cell(r, facets, rows, cols, source, store) for r in records]
    base, diffs = promptdiff.diffs([c["prompt"] for c in cells])
    for cell, segments in zip(cells, diffs):
        cell["prompt_diff"] = segments
    return {
        "rows": rows or "",
        "cols": cols or "",
        "row_values": _axis(records, rows),
        "col_values": _axis(records, cols),
        "filters": spec_filters,
        "selection": selection_for(spec_filters, filters),
        "cells": cells,
        "base": source.base,
        "base_prompt": base,
        "same_prompt": len({c["prompt"] for c in cells}) <= 1,
        "metric_docs": labels.metric_docs(),
        "summary": summary_text(runs),
        "message": "" if cells else "No runs to show: the selection is empty.",
    }


def visible(grid: Mapping[str, Any], selection: Mapping[str, str]) -> list[dict[str, Any]]:
    """The cells a selection shows (the same rule as ``grid.js``'s ``matches``)."""
    return [c for c in grid["cells"] if all(v == values.ALL or c["params"].get(k) == v for k, v in selection.items())]


def view_state(spec: Mapping[str, Any], *, tolerance: float = 0.15) -> dict[str, Any]:
    """The model state ``grid.js`` reads (the widget's traits; the report's inlined JSON)."""
    return {
        "grid": dict(spec),
        "selection": dict(spec["selection"]),
        "show_diff": False,
        "playing": False,
        "loop": True,
        "tolerance": tolerance,
    }
