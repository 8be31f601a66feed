"""The ``judgements`` dataset: one row per judge call on a clip (or a pair of clips), append-only like ``votes``.

A row says which clip(s) were judged (``run_id``, ``video_sha256``; pairwise: ``other_run_id``,
``other_video_sha256``), by which judge (``judge``, ``rubric_hash``, ``endpoint``, ``model``), on which
backend, what came back (``scores_json``, ``explanation``, ``preferred``, ``raw_text``), and what it
cost and took (``cost_usd``, ``total_s``, ...). ``fingerprint`` is the cache key: judge + rubric hash
+ the clips' sha256 (a clip is never judged twice for the same rubric on one backend).

:func:`join_judgements` adds the latest ok judgement of every per-clip judge to a runs DataFrame as
``judge_<name>_<dimension>`` columns (matched by the video's sha256, so a cache-hit run shares its
source's judgement): a score is a number, a list dimension its length (the items in
``judge_<name>_<dimension>_items``), plus ``judge_<name>_explanation``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import pyarrow as pa

from kling_lab.store.schema import TS, pandas_dtype_for

DATASET = "judgements"
KINDS = ("single", "pairwise")

# (name, arrow type, one-line meaning)
JUDGEMENT_COLUMNS: list[tuple[str, pa.DataType, str]] = [
    ("judgement_id", pa.string(), "unique id of this row"),
    ("run_id", pa.string(), "the judged run (pairwise: clip A, shown first)"),
    ("video_sha256", pa.string(), "sha256 of the judged video (pairwise: clip A's)"),
    ("other_run_id", pa.string(), "pairwise: clip B's run"),
    ("other_video_sha256", pa.string(), "pairwise: clip B's video"),
    ("sweep_id", pa.string(), "the judged run's sweep"),
    ("prompt", pa.string(), "the judged run's prompt"),
    ("judge", pa.string(), "the judge's name (vlm, pairwise, qc, or a registered one)"),
    ("kind", pa.string(), "single (scores one clip) | pairwise (prefers one of two clips)"),
    ("rubric_hash", pa.string(), "sha256 of the rubric and everything else that shapes the answer"),
    ("fingerprint", pa.string(), "the cache key: judge + rubric hash + the clips' sha256"),
    ("endpoint", pa.string(), "fal endpoint id, or 'local' for a judge that calls nothing"),
    ("model", pa.string(), "the model behind a router endpoint (e.g. google/gemini-2.5-flash)"),
    ("backend", pa.string(), "'fal' or 'emulator' (emulator judgements are placeholders, not a model's)"),
    ("request_id", pa.string(), "fal's request id of the call that gave the answer"),
    ("status", pa.string(), "ok | failed | cancelled | skipped_budget"),
    ("error_type", pa.string(), "machine-readable failure type (invalid_output: no valid JSON twice)"),
    ("error", pa.string(), "the failure's message"),
    ("attempts", pa.int16(), "HTTP attempts to submit the call that gave the answer"),
    ("tries", pa.int16(), "paid judge calls (2 when the first answer was invalid and it was asked again)"),
    ("scores_json", pa.string(), "the validated answer: dimension → score or list, as JSON"),
    ("explanation", pa.string(), "the judge's explanation"),
    ("preferred", pa.string(), "pairwise: A | B | tie"),
    ("raw_text", pa.string(), "the model's text as it came back (every answer, when asked twice)"),
    ("placeholder", pa.bool_(), "true when the answer comes from the emulator, not from a model"),
    ("arguments_json", pa.string(), "the input sent to fal (canonical JSON)"),
    ("cost_usd", pa.float64(), "what fal charges for this judgement (every paid call); 0 for local judges"),
    ("submitted_at", TS, "when the judge call was submitted (UTC)"),
    ("started_at", TS, "when inference started (UTC)"),
    ("completed_at", TS, "when the call was seen COMPLETED (UTC)"),
    ("logged_at", TS, "when this row was written (UTC)"),
    ("queue_s", pa.float64(), "seconds waiting in fal's queue"),
    ("inference_s", pa.float64(), "seconds of inference"),
    ("total_s", pa.float64(), "latency: seconds from submit to completion"),
    ("kling_lab_version", pa.string(), "version of kling_lab that wrote the row"),
    ("user", pa.string(), "who judged: $KLING_LAB_USER, else the login name"),
]
SCHEMA = pa.schema([pa.field(name, typ) for name, typ, _ in JUDGEMENT_COLUMNS])
COLUMN_DOCS = {name: doc for name, _, doc in JUDGEMENT_COLUMNS}
_NAMES = frozenset(SCHEMA.names)


class Datasets(Protocol):
    """What this module needs of a store (:class:`~kling_lab.store.run_store.RunStore` has it)."""

    def read_dataset(self, dataset: str, schema: pa.Schema = ...) -> pa.Table: ...

    def append_table(self, dataset: str, table: pa.Table, name_prefix: str = "part") -> str: ...


def append_judgements(store: Datasets, rows: Sequence[Mapping[str, Any]]) -> str | None:
    """Write ``rows`` as one new part file of the dataset (atomically). Keys that are not judgement
    columns (run-log bookkeeping the runner adds to every row) are left out."""
    if not rows:
        return None
    table = pa.Table.from_pylist([{k: v for k, v in r.items() if k in _NAMES} for r in rows], schema=SCHEMA)
    return store.append_table(DATASET, table, "judge")


def read_judgements(store: Datasets) -> pa.Table:
    """Every judgement row, once each (a compaction overlap is dropped by ``judgement_id``)."""
    table = store.read_dataset(DATASET, SCHEMA)
    if table.num_rows == 0:
        return table
    import pyarrow.compute as pc

    if pc.count_distinct(table.column("judgement_id")).as_py() == table.num_rows:
        return table
    seen: set[str] = set()
    keep = []
    for value in table.column("judgement_id").to_pylist():
        keep.append(value not in seen)
        seen.add(value)
    return table.filter(pa.array(keep))


def judgements_frame(store: Datasets):
    """The dataset as a pandas DataFrame (typed columns, UTC timestamps), oldest first."""
    df = read_judgements(store).to_pandas(types_mapper=pandas_dtype_for)
    if len(df):
        df = df.sort_values("logged_at", kind="stable").reset_index(drop=True)
    return df


def rows_where(store: Datasets, column: str, values: Iterable[str]) -> list[dict[str, Any]]:
    """The rows whose ``column`` is one of ``values``."""
    import pyarrow.compute as pc

    table = read_judgements(store)
    wanted = pa.array(sorted(set(values)), pa.string())
    return table.filter(pc.is_in(table.column(column), value_set=wanted)).to_pylist()


def cached_ok(store: Datasets, fingerprints: Iterable[str], backend: str) -> dict[str, dict[str, Any]]:
    """fingerprint → the latest ok judgement of ``backend`` (the cache: judged already, pay nothing)."""
    found: dict[str, dict[str, Any]] = {}
    rows = [
        r for r in rows_where(store, "fingerprint", fingerprints) if r["status"] == "ok" and r["backend"] == backend
    ]
    for row in sorted(rows, key=lambda r: (r["logged_at"] is None, r["logged_at"])):
        found[row["fingerprint"]] = row
    return found


def column_prefix(judge: str) -> str:
    """``judge_<name>_`` with the name made a column-friendly identifier (``vlm-strict`` → ``vlm_strict``)."""
    return "judge_" + re.sub(r"\W+", "_", judge).strip("_").lower() + "_"


def judge_columns(judgements) -> Any:
    """One row per video sha256: the latest ok per-clip judgement of each judge, spread into columns."""
    import pandas as pd

    if not len(judgements):
        return pd.DataFrame(index=pd.Index([], name="video_sha256"))
    ok = judgements[(judgements["status"] == "ok") & (judgements["kind"] == "single")]
    ok = ok.dropna(subset=["video_sha256"]).sort_values("logged_at", kind="stable")
    latest = ok.groupby(["judge", "video_sha256"], sort=False).tail(1)
    records: dict[str, dict[str, Any]] = {}
    for row in latest.itertuples(index=False):
        prefix = column_prefix(str(row.judge))
        record = records.setdefault(str(row.video_sha256), {})
        for name, value in _scores(row.scores_json).items():
            if isinstance(value, list):
                record[f"{prefix}{name}"] = float(len(value))
                record[f"{prefix}{name}_items"] = "; ".join(str(v) for v in value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                record[f"{prefix}{name}"] = float(value)
            elif value is not None:
                record[f"{prefix}{name}"] = str(value)
        if isinstance(row.explanation, str):
            record[f"{prefix}explanation"] = row.explanation
    frame = pd.DataFrame.from_dict(records, orient="index")
    frame.index.name = "video_sha256"
    for column in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype("float64")
        else:
            frame[column] = frame[column].astype(pd.StringDtype("pyarrow"))
    return frame.reindex(sorted(frame.columns), axis=1)


def join_judgements(runs, store: Datasets):
    """``runs`` with the ``judge_<name>_<dimension>`` columns of :func:`judge_columns` (NaN where not judged)."""
    columns = judge_columns(judgements_frame(store))
    if columns.shape[1] == 0 or not len(runs):
        return runs
    runs = runs.drop(columns=[c for c in columns.columns if c in runs.columns])
    joined = runs.join(columns, on="video_sha256")
    joined.index = runs.index
    return joined


def _scores(text: Any) -> dict[str, Any]:
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


__all__ = [
    "COLUMN_DOCS",
    "DATASET",
    "JUDGEMENT_COLUMNS",
    "KINDS",
    "SCHEMA",
    "append_judgements",
    "cached_ok",
    "column_prefix",
    "join_judgements",
    "judge_columns",
    "judgements_frame",
    "read_judgements",
    "rows_where",
]
