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
from kling_lab.store.schema import PARAM_COLUMNS, QC_COLUMNS, STATUSES
from kling_lab.util.money import spent_text
from kling_lab.views import labels, promptdiff, values
from kling_lab.views.sources import Source, locate

RepeatMode = Literal["stack", "select"]
PENDING = "pending"  # the status of a live grid's cell whose job has no row yet
FILTER_COLUMNS = [*PARAM_COLUMNS, "sweep_id"]
PROMPT_LABEL_WIDTH = 60
SORT_FIRST = ("cost_usd", "total_s", "queue_s", "inference_s", "download_s")
NOT_SORTABLE = {"sweep_index", "video_bytes", "width", "height", "frames", "fps", "duration_s", "repeat"}


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
        return [{"key": values.key(None), "label": "", "full": ""}]
    return [
        {"key": values.key(v), "label": values.label(v, PROMPT_LABEL_WIDTH), "full": values.label(v)}
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


def differing_columns(records: list[dict[str, Any]]) -> list[str]:
    """The parameters (and sweep) whose values differ between the runs: what a card's title names."""
    return [c for c in FILTER_COLUMNS if len(values.distinct(r.get(c) for r in records)) > 1]


def sortable_columns(runs: pd.DataFrame) -> list[str]:
    """Numeric run-log columns to sort and filter by: QC metrics, cost, latency, and any numeric
    column added to the DataFrame (e.g. a judge's score), in that order."""
    numeric = [
        c
        for c in runs.columns
        if pd.api.types.is_numeric_dtype(runs[c]) and not pd.api.types.is_bool_dtype(runs[c]) and c not in NOT_SORTABLE
    ]
    first = [c for c in (*QC_COLUMNS, *SORT_FIRST) if c in numeric]
    return first + [c for c in numeric if c not in first]


def _sort_label(column: str) -> str:
    return labels.metric_name(column) if column in QC_COLUMNS else column


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
    record: dict[str, Any],
    ctx: dict[str, Any],
    source: Source,
    store: RunStore,
) -> dict[str, Any]:
    rows, cols = ctx["rows"], ctx["cols"]
    video = locate(store, record.get("video_path"))
    cell = labels.card(
        record, facet_columns=ctx["facets"], video=video, differing=ctx["differing"], metric=ctx["metric"]
    )
    playable = video if cell["error"] is None and cell["status"] != PENDING else None
    if cell["status"] == PENDING:
        cell.update(
            state=record.get("live_state") or "planned",
            queue_position=record.get("live_queue_position"),
            message=record.get("live_message") or "",
        )
    cell.update(
        row=values.key(record.get(rows) if rows else None),
        col=values.key(record.get(cols) if cols else None),
        params={c: values.key(record.get(c)) for c in FILTER_COLUMNS},
        values={c: record[c] for c in ctx["sortable"] if isinstance(record.get(c), (int, float))},
        src=source.video(playable) if playable else None,
        poster=source.poster(playable) if playable else None,
    )
    return cell


def check_sort(sort: str, sortable: list[str]) -> str:
    """``""`` (facet order), ``"col"`` (ascending) or ``"-col"`` (descending) for a sortable column."""
    if sort and sort.lstrip("-") not in sortable:
        raise InvalidInput(f"sort: {sort.lstrip('-')!r} is not a numeric column here; choose one of {sortable}")
    return sort


def check_ranges(ranges: Mapping[str, Any] | None, sortable: list[str]) -> dict[str, list[float | None]]:
    """``{column: (low, high)}`` (either end None) → JSON-able ``{column: [low, high]}``."""
    out: dict[str, list[float | None]] = {}
    for column, bounds in (ranges or {}).items():
        if column not in sortable:
            raise InvalidInput(f"ranges: {column!r} is not a numeric column here; choose one of {sortable}")
        try:
            low, high = bounds
            out[column] = [None if low is None else float(low), None if high is None else float(high)]
        except (TypeError, ValueError):
            raise InvalidInput(f"ranges: {column} needs (low, high), either may be None; got {bounds!r}") from None
    return out


def build_grid(
    runs: pd.DataFrame,
    rows: str | None = "cfg_scale",
    cols: str | None = "aspect_ratio",
    *,
    repeat: RepeatMode = "stack",
    filters: Mapping[str, Any] | None = None,
    source: Source,
    store: RunStore,
    metric: str | None = "qc_motion",
) -> dict[str, Any]:
    """The grid spec (JSON-able) for ``grid.js``; its ``selection`` is the initial filter choice."""
    facets = check_facets(runs, rows, cols) if len(runs.columns) else []
    records = [{str(k): values.py(v) for k, v in r.items()} for r in runs.to_dict("records")]
    sortable = sortable_columns(runs) if len(runs.columns) else []
    spec = grid_spec(
        records,
        rows,
        cols,
        facets=facets,
        sortable=sortable,
        repeat=repeat,
        filters=filters,
        source=source,
        store=store,
        metric=metric,
    )
    spec["summary"] = summary_text(runs)
    return spec


def grid_spec(
    records: list[dict[str, Any]],
    rows: str | None,
    cols: str | None,
    *,
    facets: list[str],
    sortable: list[str],
    repeat: RepeatMode = "stack",
    filters: Mapping[str, Any] | None = None,
    source: Source,
    store: RunStore,
    metric: str | None = "qc_motion",
) -> dict[str, Any]:
    """The grid spec of plain records (run-log rows; a live grid adds ``status="pending"`` records
    whose ``live_state``, ``live_queue_position`` and ``live_message`` say where the job is)."""
    if repeat not in ("stack", "select"):
        raise InvalidInput(f"repeat must be 'stack' or 'select'; got {repeat!r}")
    records = sorted(records, key=lambda r: (values.sort_key(r.get("repeat")), values.sort_key(r.get("sweep_index"))))
    spec_filters = _filters(records, facets, repeat)
    ctx = {
        "rows": rows,
        "cols": cols,
        "facets": facets,
        "differing": differing_columns(records),
        "metric": metric if metric in sortable else None,
        "sortable": sortable,
    }
    cells = [_cell(r, ctx, source, store) for r in records]
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
        "sortable": [{"column": c, "label": _sort_label(c)} for c in sortable],
        "metric": ctx["metric"] or "",
        "cells": cells,
        "base": source.base,
        "source": getattr(source, "kind", ""),
        "base_prompt": base,
        "same_prompt": len({c["prompt"] for c in cells}) <= 1,
        "metric_docs": labels.metric_docs(),
        "summary": "",
        "message": "" if cells else "No runs to show: the selection is empty.",
    }


def visible(
    grid: Mapping[str, Any],
    selection: Mapping[str, str],
    sort: str = "",
    ranges: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The cells a view shows, in order (the same rules as ``grid.js``'s ``visibleCells``): the
    selection and the ranges filter (a cell without the value is out), ``sort`` orders (missing last)."""

    def kept(cell: Mapping[str, Any]) -> bool:
        if not all(v == values.ALL or cell["params"].get(k) == v for k, v in selection.items()):
            return False
        for column, (low, high) in (ranges or {}).items():
            value = cell.get("values", {}).get(column)
            if value is None or (low is not None and value < low) or (high is not None and value > high):
                return False
        return True

    cells = [c for c in grid["cells"] if kept(c)]
    if sort:
        column, descending = sort.lstrip("-"), sort.startswith("-")
        present = [c for c in cells if c.get("values", {}).get(column) is not None]
        present.sort(key=lambda c: c["values"][column], reverse=descending)
        cells = present + [c for c in cells if c.get("values", {}).get(column) is None]
    return cells


def view_state(
    spec: Mapping[str, Any], *, tolerance: float = 0.15, sort: str = "", ranges: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The model state ``grid.js`` reads (the widget's traits; the report's inlined JSON)."""
    sortable = [s["column"] for s in spec.get("sortable", [])]
    return {
        "grid": dict(spec),
        "selection": dict(spec["selection"]),
        "sort": check_sort(sort, sortable),
        "ranges": check_ranges(ranges, sortable),
        "show_diff": False,
        "show_details": False,
        "playing": False,
        "loop": True,
        "tolerance": tolerance,
    }
