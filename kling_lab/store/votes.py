"""The ``votes`` dataset: one row per blind A/B vote, appended to the store as it is cast.

Each vote is written at once as its own small parquet file under ``<store>/votes/`` (atomic
rename, via ``RunStore.append_table``), so a kernel restart or crash loses nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from kling_lab._version import __version__
from kling_lab.errors import InvalidInput
from kling_lab.store.run_store import RunStore
from kling_lab.store.schema import TS, pandas_dtype_for

DATASET = "votes"
CHOICES = ("left", "right", "tie", "both_bad")

VOTE_COLUMNS: list[tuple[str, pa.DataType, str]] = [
    ("vote_id", pa.string(), "unique id of the vote"),
    ("voter", pa.string(), "who voted (default: the OS user name)"),
    ("voted_at", TS, "when the vote was cast (UTC)"),
    ("by", pa.string(), "the run-log column whose arms were compared, e.g. negative_prompt"),
    ("left_run_id", pa.string(), "run shown on the left"),
    ("right_run_id", pa.string(), "run shown on the right"),
    ("left_arm", pa.string(), "the left run's value of `by` (as a label: '(empty)' for '')"),
    ("right_arm", pa.string(), "the right run's value of `by`"),
    ("choice", pa.string(), "left | right | tie | both_bad"),
    ("prompt", pa.string(), "the prompt both runs share"),
    ("sweep_id", pa.string(), "the left run's sweep (both runs' when they share one)"),
    ("session_id", pa.string(), "one id per ab() widget: votes cast in one sitting"),
    ("kling_lab_version", pa.string(), "version of kling_lab that wrote the vote"),
]
SCHEMA = pa.schema([pa.field(name, typ) for name, typ, _ in VOTE_COLUMNS])


def vote_row(
    *,
    voter: str,
    by: str,
    left: Mapping[str, Any],
    right: Mapping[str, Any],
    left_arm: str,
    right_arm: str,
    choice: str,
    session_id: str = "",
) -> dict[str, Any]:
    """A vote as a row of ``SCHEMA`` (``left``/``right`` are the runs' records)."""
    if choice not in CHOICES:
        raise InvalidInput(f"choice must be one of {CHOICES}; got {choice!r}")
    return {
        "vote_id": uuid.uuid4().hex,
        "voter": voter,
        "voted_at": datetime.now(UTC),
        "by": by,
        "left_run_id": left.get("run_id"),
        "right_run_id": right.get("run_id"),
        "left_arm": left_arm,
        "right_arm": right_arm,
        "choice": choice,
        "prompt": left.get("prompt"),
        "sweep_id": left.get("sweep_id"),
        "session_id": session_id,
        "kling_lab_version": __version__,
    }


def append_vote(store: RunStore, row: Mapping[str, Any]) -> None:
    """Write one vote to the store now (its own atomic parquet file)."""
    store.append_table(DATASET, pa.Table.from_pylist([dict(row)], schema=SCHEMA))


def load_votes(store: RunStore | str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Every vote in ``store`` (default ``$KLING_LAB_STORE`` or ./kling_runs), oldest first, typed columns."""
    table = RunStore.coerce(store).read_dataset(DATASET, SCHEMA)
    df = table.to_pandas(types_mapper=pandas_dtype_for)
    if len(df):
        df = df.drop_duplicates(subset="vote_id").sort_values("voted_at", kind="stable").reset_index(drop=True)
    return df
