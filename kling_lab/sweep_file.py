"""The sweep file as a pydantic model: its keys, their shapes, and its JSON Schema for editors.

The model checks the file's structure (known keys, lists where lists belong, a string name, a
positive ``repeats``, known model aliases under ``models:`` and ``prices:``); the input values
themselves are checked request by request by the chosen model's schema (:mod:`kling_lab.models`),
whose JSON Schemas the sweep file's schema reuses, so each input is described once. The inputs a
file may name are those of the registered models (plus ``model``, ``image`` and ``end_image``).
``kling-lab schema`` prints :func:`sweep_file_schema`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sized
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from kling_lab.errors import SweepFileError
from kling_lab.models import DEFAULT_MODEL, END_IMAGE, IMAGE, Model, all_parameters, get_model, model_names, models

STRUCTURE_KEYS = ("name", "description", "grid", "zip", "requests", "repeats", "tags", "models", "prices")
PRICE_KEYS = ("usd_per_clip", "usd_per_second")
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


def sweep_keys() -> list[str]:
    """Every top-level key a sweep file may hold (structure keys, then the registered models' inputs)."""
    return [*STRUCTURE_KEYS, *all_parameters()]


def _check_inputs(where: str, keys: Any) -> None:
    known = all_parameters()
    for key in keys:
        if key not in known:
            raise ValueError(f"{where}{key}: unknown input; allowed inputs: {', '.join(known)}")


class SweepFile(BaseModel):
    """What a sweep YAML file may hold (see :mod:`kling_lab.sweep` for how it expands).

    Top-level inputs (``prompt``, ``cfg_scale``, ``model``, ...) are the model's extra fields.
    """

    model_config = ConfigDict(extra="allow", title="kling_lab sweep file")

    name: StrictStr | None = Field(None, min_length=1, description="the experiment's name (default: the file's stem)")
    description: StrictStr = ""
    grid: dict[str, list[Any]] | None = Field(None, description="cartesian product of input lists")
    zip: dict[str, list[Any]] | None = Field(None, description="input lists of equal length, taken element-wise")
    requests: list[dict[str, Any]] | None = Field(
        None, min_length=1, description="explicit partial inputs, each crossed with grid and zip"
    )
    repeats: StrictInt = Field(1, ge=1, description="distinct requests per input set")
    tags: dict[str, Any] | None = Field(None, description="stored as params_json on every row")
    models: dict[str, dict[str, Any]] | None = Field(
        None, description="per-model inputs: {alias: {input: value}}, applied only to that model's requests"
    )
    prices: dict[str, dict[str, float]] | None = Field(
        None, description="your price per model: {alias: {usd_per_clip: X} or {usd_per_second: X}}"
    )

    @field_validator("grid", "zip")
    @classmethod
    def _known_inputs(cls, axes: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        for key, values in (axes or {}).items():
            _check_inputs("", [key])
            if not values:
                raise ValueError(f"{key}: must be a non-empty list of values")
        return axes

    @field_validator("models", "prices")
    @classmethod
    def _known_models(cls, per_model: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
        for alias, values in (per_model or {}).items():
            if alias not in model_names():
                raise ValueError(f"{alias}: unknown model; known models: {', '.join(model_names())}")
            if "model" in values:
                raise ValueError(f"{alias}.model: a model's own inputs cannot change its model")
        return per_model

    @model_validator(mode="after")
    def _known_top_level(self) -> SweepFile:
        extra = self.model_extra or {}
        known = all_parameters()
        for key in extra:
            if key not in known:
                raise ValueError(f"{key}: unknown key; allowed keys: {', '.join(sweep_keys())}")
        return self

    def fixed_inputs(self) -> dict[str, Any]:
        """The top-level inputs the file sets (they apply to every request)."""
        return dict(self.model_extra or {})

    @classmethod
    def parse(cls, data: Any) -> SweepFile:
        """Validate a loaded file; raise :class:`SweepFileError` with one line naming the key."""
        if not isinstance(data, Mapping):
            raise SweepFileError("a sweep file must be a mapping of keys: " + ", ".join(sweep_keys()))
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise _one_line(exc) from None


def _one_line(exc: ValidationError) -> SweepFileError:
    first = exc.errors()[0]
    loc = [str(part) for part in first.get("loc", ())]
    where = ".".join(loc)
    kind = first.get("type", "")
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
    if loc[:1] == ["prices"] and len(loc) >= 3:
        return SweepFileError(f"{where}: must be an amount in USD; got {first.get('input')!r}")
    if kind == "dict_type":
        return SweepFileError(f"{where}: must be a mapping")
    if kind == "list_type":
        return SweepFileError(f"{where}: must be a list")
    return SweepFileError(f"{where}: {first.get('msg')}")


# -- JSON Schema for editors ----------------------------------------------------------------------
IMAGE_SCHEMA = {"type": "string", "minLength": 1, "description": "a local image file or an https:// URL"}


def _model_inputs(model: Model) -> dict[str, dict[str, Any]]:
    """Input name → JSON Schema of that input for ``model`` (over its endpoints)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for endpoint in model.endpoints:
        props = endpoint.schema.model_json_schema().get("properties", {})
        renamed = {f: name for name, f in endpoint.image_fields.items()}
        for field in endpoint.fields:
            name = renamed.get(field, field)
            prop = IMAGE_SCHEMA if name in (IMAGE, END_IMAGE) else _clean(props.get(field, {}))
            if prop not in found.setdefault(name, []):
                found[name].append(prop)
    return {name: _union(options) for name, options in found.items()}


def _clean(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prop.items() if k not in ("title", "default")}


def _union(options: list[dict[str, Any]]) -> dict[str, Any]:
    return options[0] if len(options) == 1 else {"anyOf": options}


def _all_inputs() -> dict[str, dict[str, Any]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for model in models():
        for name, prop in _model_inputs(model).items():
            for option in prop.get("anyOf", [prop]):
                if option not in found.setdefault(name, []):
                    found[name].append(option)
    inputs = {name: _union(options) for name, options in found.items()}
    inputs["model"] = {"enum": model_names(), "description": f"the model's alias (default {DEFAULT_MODEL})"}
    return inputs


def _model_condition(model: Model) -> dict[str, Any]:
    """if the file's requests all use ``model`` (named at the top, or no model named anywhere), its inputs apply."""
    named_here = {"properties": {"model": {"const": model.alias}}, "required": ["model"]}
    if model.alias != DEFAULT_MODEL:
        condition: dict[str, Any] = named_here
    else:
        named_anywhere = [
            {"required": ["model"]},
            {"required": ["grid"], "properties": {"grid": {"required": ["model"]}}},
            {"required": ["zip"], "properties": {"zip": {"required": ["model"]}}},
            {"required": ["requests"], "properties": {"requests": {"contains": {"required": ["model"]}}}},
        ]
        condition = {"anyOf": [named_here, {"not": {"anyOf": named_anywhere}}]}
    inputs = _model_inputs(model)
    others = {name: False for name in all_parameters() if name not in inputs and name != "model"}
    return {"if": condition, "then": {"properties": {**inputs, **others}}}


def sweep_file_schema() -> dict[str, Any]:
    """JSON Schema of a sweep file, each input described by the models' own schemas."""
    schema = SweepFile.model_json_schema()
    inputs = _all_inputs()
    props = schema["properties"]
    props.update(inputs)
    axes = {
        "type": "object",
        "additionalProperties": False,
        "properties": {key: {"type": "array", "minItems": 1, "items": value} for key, value in inputs.items()},
    }
    props["grid"] = {**axes, "description": props["grid"].get("description", "")}
    props["zip"] = {**axes, "description": props["zip"].get("description", "")}
    partial = {"type": "object", "additionalProperties": False, "properties": inputs}
    props["requests"] = {
        "type": "array",
        "minItems": 1,
        "items": partial,
        "description": props["requests"].get("description", ""),
    }
    aliases = model_names()
    props["models"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            m.alias: {"type": "object", "additionalProperties": False, "properties": _model_inputs(m)} for m in models()
        },
        "description": props["models"].get("description", ""),
    }
    price = {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "properties": {key: {"type": "number", "minimum": 0} for key in PRICE_KEYS},
    }
    props["prices"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {alias: price for alias in aliases},
        "description": props["prices"].get("description", ""),
    }
    schema["additionalProperties"] = False
    schema["allOf"] = [_model_condition(get_model(alias)) for alias in aliases]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


__all__ = [
    "MAX_REQUESTS",
    "PRICE_KEYS",
    "STRUCTURE_KEYS",
    "SweepFile",
    "check_request_count",
    "planned_requests",
    "sweep_file_schema",
    "sweep_keys",
]
