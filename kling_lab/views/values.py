"""Cell values of a runs DataFrame as plain Python, stable keys and short labels.

Views group, filter and label runs by column values that may be pandas NA, numpy scalars or
empty strings. Every view goes through these helpers so a value has one key (``key``: its JSON
text, unambiguous: ``'"blur"'``, ``'0.25'``, ``'null'``) and one label (``label``) everywhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from kling_lab.util.text import truncate

EMPTY_LABEL = "(empty)"
MISSING_LABEL = "—"
ALL = "*"  # the "no filter" choice of a dropdown


def py(value: Any) -> Any:
    """``value`` as a plain JSON-able Python value: NA/NaN/NaT → None, numpy scalars → Python."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def key(value: Any) -> str:
    """A stable string key for grouping/filtering: the JSON text of the plain value."""
    value = py(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value) if abs(value) < 2**53 else value
    return json.dumps(value, ensure_ascii=False, default=str)


def label(value: Any, width: int | None = None) -> str:
    """A short human label: ``(empty)`` for "", ``—`` for missing, ``0.25`` for floats."""
    value = py(value)
    if value is None:
        text = MISSING_LABEL
    elif isinstance(value, str):
        text = value if value.strip() else EMPTY_LABEL
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    return text if width is None else truncate(text, width)


def sort_key(value: Any) -> tuple[int, float, str]:
    """Numbers numerically, then strings, missing values last."""
    value = py(value)
    if value is None:
        return (2, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def distinct(values: Iterable[Any]) -> list[Any]:
    """The distinct plain values (by ``key``), sorted by ``sort_key``."""
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault(key(value), py(value))
    return sorted(seen.values(), key=sort_key)


def column_or_none(runs: pd.DataFrame, column: str) -> list[Any]:
    """The column's plain values, or Nones when the frame lacks it (older run logs)."""
    if column in runs.columns:
        return [py(v) for v in runs[column].tolist()]
    return [None] * len(runs)
