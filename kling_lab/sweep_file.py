"""The sweep file as a pydantic model: its keys, their shapes, and its JSON Schema for editors.

The model checks the file's structure (known keys, lists where lists belong, a string name, a
positive ``repeats``); the input values themselves are checked request by request by
:class:`~kling_lab.request.KlingRequest`, whose JSON Schema the sweep file's schema reuses, so each
input is described once. ``kling-lab schema`` prints :func:`sweep_file_schema`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sized
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, field_validator

from kling_lab.errors import SweepFileError
from kling_lab.request import INPUT_FIELDS, KlingRequest

STRUCTURE_KEYS = ("name", "description", "grid", "zip", "requests", "repeats", "tags")
SWEEP_KEYS = (*STRUCTURE_KEYS, *INPUT_FIELDS)
MAX_REQUESTS = 10_000  # a sweep larger than this is refused unless the limit is raised


def planned_requests(
    grid: Mapping[str, Sized] | None,
    zip: Mapping[str, Sized] | None,
    requests: Sized | None,
    repeats: int,
) -> tuple[int, str]:
    """How many requests a sweep expands to, and how (``"3 requests × 100 × 1000 grid × 2 repeats"``),
    computed from the sizes alone: nothing is built."""
    factors: list[tuple[int, str]] = []  # (count, how it reads)
    if requests is not None:
        factors.append((len(requests), f"{len(requests)} listed requests"))
    if grid:
        sizes = [len(values) for values in grid.values()]
        factors.append((math.prod(sizes), " × ".join(map(str, sizes)) + " grid"))
    if zip:
        rows = max(len(values) for values in zip.values())
        factors.append((rows, f"{rows} zip rows"))
    if repeats != 1 or not factors:
        factors.append((repeats, f"{repeats:,} repeats"))
    return math.prod(n for n, _ in factors), " × ".join(text for _, text in factors)


def check_request_count(count: int, how: str, limit: int | None, *, option: str = "--max-requests") -> None:
    """Refuse ``count`` above ``limit`` with one line saying how to raise it."""
    if limit is not None and count > limit:
        raise SweepFileError(
            f"this sweep expands to {count:,} requests ({how}), more than the limit of {limit:,}; "
            f"if you mean it, raise the limit ({option} N, or max_requests=N in Python)"
        )


class SweepFile(BaseModel):
    """What a sweep YAML file may hold (see :mod:`kling_lab.sweep` for how it expands)."""

    model_config = ConfigDict(extra="forbid", title="kling_lab sweep file")

    name: StrictStr | None = Field(None, min_length=1, description="the experiment's name (default: the file's stem)")
    description: StrictStr = ""
    grid: dict[str, list[Any]] | None = Field(None, description="cartesian product of input lists")
    zip: dict[str, list[Any]] | None = Field(None, description="input lists of equal length, taken element-wise")
    requests: list[dict[str, Any]] | None = Field(
        None, min_length=1, description="explicit partial inputs, each crossed with grid and zip"
    )
    repeats: StrictInt = Field(1, ge=1, description="distinct requests per input set (Kling has no seed)")
    tags: dict[str, Any] | None = Field(None, description="stored as params_json on every row")
    prompt: Any = None
    duration: Any = None
    aspect_ratio: Any = None
    negative_prompt: Any = None
    cfg_scale: Any = None

    @field_validator("grid", "zip")
    @classmethod
    def _known_inputs(cls, axes: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        for key, values in (axes or {}).items():
            if key not in INPUT_FIELDS:
                raise ValueError(f"{key}: unknown input; allowed inputs: {', '.join(INPUT_FIELDS)}")
            if not values:
                raise ValueError(f"{key}: must be a non-empty list of values")
        return axes

    def fixed_inputs(self) -> dict[str, Any]:
        """The top-level inputs the file sets (they apply to every request)."""
        return {key: getattr(self, key) for key in INPUT_FIELDS if key in self.model_fields_set}

    @classmethod
    def parse(cls, data: Any) -> SweepFile:
        """Validate a loaded file; raise :class:`SweepFileError` with one line naming the key."""
        if not isinstance(data, Mapping):
            raise SweepFileError("a sweep file must be a mapping of keys: " + ", ".join(SWEEP_KEYS))
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise _one_line(exc) from None


def _one_line(exc: ValidationError) -> SweepFileError:
    first = exc.errors()[0]
    loc = [str(part) for part in first.get("loc", ())]
    where = ".".join(loc)
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        return SweepFileError(f"{where}: unknown key; allowed keys: {', '.join(SWEEP_KEYS)}")
    if kind == "value_error":  # our validators name the key themselves
        message = str(first.get("ctx", {}).get("error") or first.get("msg"))
        return SweepFileError(f"{loc[0]}.{message}" if loc else message)
    if loc[:1] in (["grid"], ["zip"]) and len(loc) >= 2 and kind in ("list_type", "dict_type"):
        return SweepFileError(f"{'.'.join(loc[:2])}: must be a non-empty list of values")
    if loc[:1] == ["requests"] and kind == "too_short":
        return SweepFileError("requests: must list at least one request (or leave the key out)")
    if loc[:1] == ["requests"] and kind == "dict_type":
        return SweepFileError(f"requests[{loc[1]}]: must be a mapping of inputs")
    if loc[:1] == ["name"]:
        return SweepFileError(f"name: must be a non-empty string; got {first.get('input')!r}")
    if loc[:1] == ["repeats"]:
        return SweepFileError(f"repeats: must be a positive integer; got {first.get('input')!r}")
    if kind == "dict_type":
        return SweepFileError(f"{where}: must be a mapping")
    if kind == "list_type":
        return SweepFileError(f"{where}: must be a list")
    return SweepFileError(f"{where}: {first.get('msg')}")


def sweep_file_schema() -> dict[str, Any]:
    """JSON Schema of a sweep file, with each input described by the request's own schema."""
    schema = SweepFile.model_json_schema()
    inputs = KlingRequest.model_json_schema()["properties"]
    props = schema["properties"]
    for key in INPUT_FIELDS:
        props[key] = inputs[key]
    axes = {
        "type": "object",
        "additionalProperties": False,
        "properties": {key: {"type": "array", "minItems": 1, "items": inputs[key]} for key in INPUT_FIELDS},
    }
    props["grid"] = {**axes, "description": props["grid"].get("description", "")}
    props["zip"] = {**axes, "description": props["zip"].get("description", "")}
    partial = {"type": "object", "additionalProperties": False, "properties": {k: inputs[k] for k in INPUT_FIELDS}}
    props["requests"] = {
        "type": "array",
        "minItems": 1,
        "items": partial,
        "description": props["requests"].get("description", ""),
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


__all__ = [
    "MAX_REQUESTS",
    "STRUCTURE_KEYS",
    "SWEEP_KEYS",
    "SweepFile",
    "check_request_count",
    "planned_requests",
    "sweep_file_schema",
]
