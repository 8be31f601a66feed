"""Escaped HTML tables of a sweep for the static report: cost/latency summary, parameters, QC metrics."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from kling_lab.store.schema import PARAM_COLUMNS
from kling_lab.util.money import spent_text
from kling_lab.views.labels import failure_text, metric_columns, metric_docs, metric_name
from kling_lab.views.values import label, py

LATENCY_COLUMNS = ["queue_s", "inference_s", "total_s", "download_s"]
_NUMBER = re.compile(r"\$?-?[\d.]+(e[-+]?\d+)?")


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    titles: Sequence[str] | None = None,
    bad: Sequence[bool] | None = None,
) -> str:
    """An HTML table; every header, title and cell is escaped; numbers are right-aligned."""

    def cell(value: Any) -> str:
        text = html.escape(str(value))
        return f'<td class="kl-num">{text}</td>' if _NUMBER.fullmatch(text) else f"<td>{text}</td>"

    head = "".join(
        f'<th title="{html.escape(t, quote=True)}">{html.escape(h)}</th>'
        for h, t in zip(headers, titles or [""] * len(headers))
    )
    marks = ['<tr class="kl-bad">' if bad and bad[i] else "<tr>" for i in range(len(rows))]
    body = "".join(f"{mark}{''.join(cell(v) for v in row)}</tr>" for mark, row in zip(marks, rows))
    return f'<table class="kl-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _num(value: Any, fmt: str = "{:.2f}") -> Any:
    value = py(value)
    return "" if value is None else fmt.format(value)


def summary_table(runs: pd.DataFrame) -> str:
    """Runs and cost per status, then median / p90 / max of each latency column."""
    if runs.empty:
        return '<p class="kl-note">No runs.</p>'
    by_status = runs.groupby("status", sort=True)["cost_usd"].agg(["size", "sum"])
    rows: list[list[Any]] = [[s, int(r["size"]), f"${r['sum']:.2f}"] for s, r in by_status.iterrows()]
    rows.append(["total", len(runs), f"${runs['cost_usd'].fillna(0).sum():.2f}"])
    latency = [
        [c, _num(runs[c].median()), _num(runs[c].quantile(0.9)), _num(runs[c].max()), int(runs[c].notna().sum())]
        for c in LATENCY_COLUMNS
        if c in runs
    ]
    return (
        table(["status", "runs", "cost (USD, fal prices)"], rows)
        + f'<p class="kl-note">{html.escape(spent_text(runs))}</p>'
        + table(["latency", "median s", "p90 s", "max s", "runs measured"], latency)
        + ("<p></p>" + models_table(runs) if "model" in runs else "")
    )


def models_table(runs: pd.DataFrame) -> str:
    """Per model: requests, failure rate, dollars per ok clip, latency (see :func:`kling_lab.stats.models.model_table`)."""
    from kling_lab.stats.models import model_table

    per = model_table(runs)
    rows = [
        [
            model,
            int(r["requests"]),
            int(r["ok"]),
            _num(r["failure_rate"], "{:.0%}"),
            f"${r['spent_usd']:.2f}",
            _num(r["usd_per_ok_clip"], "${:.2f}"),
            _num(r["median_s"]),
            _num(r["p90_s"]),
        ]
        for model, r in per.iterrows()
    ]
    headers = ["model", "requests", "ok", "failed %", "spent", "$ per ok clip", "median s", "p90 s"]
    return table(headers, rows)


def params_table(runs: pd.DataFrame) -> str:
    """One row per run: status, parameters, cost, latency, error."""
    headers = ["#", "status", *PARAM_COLUMNS, "cost", "queue s", "inference s", "download s", "error"]
    rows, bad = [], []
    for i, r in enumerate(runs.to_dict("records"), 1):
        rows.append(
            [
                i,
                r["status"],
                *(label(r.get(c)) for c in PARAM_COLUMNS),
                _num(r.get("cost_usd")),
                _num(r.get("queue_s")),
                _num(r.get("inference_s")),
                _num(r.get("download_s")),
                failure_text({str(k): py(v) for k, v in r.items()}) or "",
            ]
        )
        bad.append(r["status"] != "ok")
    return table(headers, rows, bad=bad)


def metrics_table(runs: pd.DataFrame, facets: Sequence[str]) -> str:
    """QC metrics and judge scores of the ok runs, numbered as in the parameter table (headers explain each)."""
    columns = metric_columns(runs.columns)
    keys = [*facets, "repeat"] if "repeat" not in facets else list(facets)
    rows = [
        [i, *(label(r.get(c)) for c in keys), *(_num(r.get(c), "{:.3g}") for c in columns)]
        for i, r in enumerate(runs.to_dict("records"), 1)
        if r.get("status") == "ok"
    ]
    if not rows:
        return '<p class="kl-note">No ok runs, so no metrics.</p>'
    headers = ["#", *keys, *(metric_name(c) for c in columns)]
    docs = metric_docs(columns)
    return table(headers, rows, titles=["", *([""] * len(keys)), *(docs[metric_name(c)] for c in columns)])
