"""Building blocks of the input schemas, and pydantic errors as one line naming model, input and allowed values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from kling_lab.errors import InvalidRequest
from kling_lab.util.text import control_character

STRICT = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def number_to_choice(value: Any) -> Any:
    """``5`` or ``5.0`` → ``"5"``: YAML gives numbers where fal's enums are strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value) if isinstance(value, int) else value


def number_to_seconds(value: Any) -> Any:
    """``8`` or ``"8"`` → ``"8s"`` (Veo writes its durations with a unit)."""
    value = number_to_choice(value)
    return f"{value}s" if isinstance(value, str) and value.isdigit() else value


def _strict_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"got {value!r}")
    return value


def _no_control(value: Any) -> Any:
    """Refuse NUL, ESC, BEL, CR, DEL, CSI...: a prompt never needs them (newlines and tabs are fine)."""
    found = control_character(value) if isinstance(value, str) else None
    if found is not None:
        raise ValueError(f"contains the control character {found[0]!r} at position {found[1]}")
    return value


def _non_blank(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return _no_control(value)


# In a schema: ``duration: Annotated[Literal["5", "10"], FROM_NUMBER] = "5"`` takes 5 and "5".
FROM_NUMBER = BeforeValidator(number_to_choice)
FROM_SECONDS = BeforeValidator(number_to_seconds)  # 8, "8" -> "8s" (Veo writes a unit)
Number = Annotated[float, BeforeValidator(_strict_number)]
Text = Annotated[str, BeforeValidator(_non_blank)]  # a prompt: not blank, no control characters
FreeText = Annotated[str, BeforeValidator(_no_control)]  # e.g. a negative prompt: may be empty
# YAML 1.1 reads an unquoted 1:1 as a base-60 number: aspect ratios arrive as these integers.
BASE_60_ASPECTS = {1 * 60 + 1: "1:1", 16 * 60 + 9: "16:9", 9 * 60 + 16: "9:16", 4 * 60 + 3: "4:3", 3 * 60 + 4: "3:4"}


def allowed(schema: type[BaseModel], name: str) -> str:
    """What ``schema`` allows for field ``name``, in words (from its JSON Schema)."""
    prop = schema.model_json_schema().get("properties", {}).get(name, {})
    options = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"] or [prop]
    return " or ".join(_describe(option) for option in options)


def _describe(prop: Mapping[str, Any]) -> str:
    if "enum" in prop or "const" in prop:
        values = prop.get("enum", [prop.get("const")])
        shown = [v for v in values if isinstance(v, str)] or values
        return "one of " + ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in shown)
    kind = prop.get("type")
    if kind == "boolean":
        return "true or false"
    if kind in ("number", "integer"):
        word = "a whole number" if kind == "integer" else "a finite number"
        low = prop.get("minimum", prop.get("exclusiveMinimum"))
        high = prop.get("maximum", prop.get("exclusiveMaximum"))
        if low is not None and high is not None:
            return f"{word} between {low:g} and {high:g}"
        if low is not None:
            return f"{word} >= {low:g}"
        return word
    if kind == "string":
        most = prop.get("maxLength")
        least = prop.get("minLength")
        if least:
            return f"a non-empty string{f' of at most {most} characters' if most else ''}"
        return f"a string{f' of at most {most} characters' if most else ''}"
    return "valid"


def one_line(
    exc: ValidationError,
    *,
    alias: str,
    schema: type[BaseModel],
    data: Mapping[str, Any],
    renamed: Mapping[str, str] | None = None,
) -> InvalidRequest:
    """pydantic's first error as ``"<alias>: <input>: must be <allowed>; got <value>"``."""
    first = exc.errors()[0]
    loc = first.get("loc") or ()
    name = str(loc[0]) if loc else "input"
    shown = (renamed or {}).get(name, name)
    if first.get("type") == "missing":
        return InvalidRequest(f"{alias}: {shown}: required; must be {allowed(schema, name)}", field=shown)
    got = data.get(name, first.get("input"))
    if isinstance(got, str) and control_character(got):  # name the character; never echo the text
        reason = first.get("ctx", {}).get("error") or "contains a control character"
        return InvalidRequest(f"{alias}: {shown}: {reason}; not allowed in a prompt", field=shown)
    got_text = f"{len(got)} characters" if isinstance(got, str) and len(got) > 60 else repr(got)
    hint = ""
    if name == "aspect_ratio" and type(got) is int and got in BASE_60_ASPECTS:
        ratio = BASE_60_ASPECTS[got]
        hint = f' (YAML reads an unquoted {ratio} as the base-60 number {got}: quote it, "{ratio}")'
    return InvalidRequest(f"{alias}: {shown}: must be {allowed(schema, name)}; got {got_text}{hint}", field=shown)


__all__ = [
    "FROM_NUMBER",
    "FROM_SECONDS",
    "STRICT",
    "Number",
    "Text",
    "allowed",
    "number_to_choice",
    "number_to_seconds",
    "one_line",
]
