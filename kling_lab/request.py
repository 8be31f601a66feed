"""One validated Kling 2.0 Master text-to-video request, its price and its fingerprint.

Pure: no I/O. The inputs, enums, defaults and ranges mirror fal's schema for
``fal-ai/kling-video/v2/master/text-to-video``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kling_lab.errors import InvalidRequest
from kling_lab.util.text import canonical_json, control_character

ENDPOINT = "fal-ai/kling-video/v2/master/text-to-video"
DEFAULT_NEGATIVE_PROMPT = "blur, distort, and low quality"
DURATIONS = ("5", "10")
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
MAX_PROMPT_CHARS = 2500
INPUT_FIELDS = ("prompt", "duration", "aspect_ratio", "negative_prompt", "cfg_scale")

# fal's price rule for Kling 2.0 Master: $1.40 for the first 5 s, $0.28 per extra second.
BASE_PRICE_USD = Decimal("1.40")
BASE_SECONDS = 5
EXTRA_SECOND_USD = Decimal("0.28")

# Kling 2.0 Master serves 720p.
OUTPUT_SIZES: dict[str, tuple[int, int]] = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (720, 720)}

# YAML 1.1 reads an unquoted 1:1 as a base-60 number: aspect ratios arrive as these integers.
_BASE_60_ASPECTS = {1 * 60 + 1: "1:1", 16 * 60 + 9: "16:9", 9 * 60 + 16: "9:16"}

_ALLOWED = {
    "prompt": f"a non-empty string of at most {MAX_PROMPT_CHARS} characters",
    "duration": 'one of "5", "10" (or the integers 5, 10)',
    "aspect_ratio": 'one of "16:9", "9:16", "1:1"',
    "negative_prompt": f"a string of at most {MAX_PROMPT_CHARS} characters",
    "cfg_scale": "a finite number between 0 and 1",
}


def _durations_in_schema(schema: dict[str, Any]) -> None:
    """The schema says what the parser takes: "5"/"10" or the integers 5/10."""
    schema.pop("type", None)
    schema["enum"] = [*DURATIONS, *(int(d) for d in DURATIONS)]


def price_usd(duration_s: int) -> float:
    """fal's price for one clip of ``duration_s`` seconds (exact decimal arithmetic)."""
    extra = max(0, duration_s - BASE_SECONDS)
    return float(BASE_PRICE_USD + EXTRA_SECOND_USD * extra)


class KlingRequest(BaseModel):
    """The five inputs of one Kling 2.0 Master text-to-video call.

    Build it with ``KlingRequest(prompt=...)`` (raises pydantic's
    ``ValidationError``) or ``KlingRequest.parse(mapping)`` (raises a one-line
    :class:`~kling_lab.errors.InvalidRequest` naming the field and the allowed values).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    duration: Literal["5", "10"] = Field("5", json_schema_extra=_durations_in_schema)
    aspect_ratio: Literal["16:9", "9:16", "1:1"] = "16:9"
    negative_prompt: str = Field(DEFAULT_NEGATIVE_PROMPT, max_length=MAX_PROMPT_CHARS)
    cfg_scale: float = Field(0.5, ge=0.0, le=1.0)

    @field_validator("prompt")
    @classmethod
    def _prompt_ok(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if len(value) > MAX_PROMPT_CHARS:
            raise ValueError(f"has {len(value)} characters, more than {MAX_PROMPT_CHARS}")
        return _no_control_characters(value)

    @field_validator("negative_prompt")
    @classmethod
    def _negative_ok(cls, value: str) -> str:
        if len(value) > MAX_PROMPT_CHARS:
            raise ValueError(f"has {len(value)} characters, more than {MAX_PROMPT_CHARS}")
        return _no_control_characters(value)

    @field_validator("duration", mode="before")
    @classmethod
    def _duration_from_int(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and str(value) in DURATIONS:
            return str(value)
        if isinstance(value, float) and value.is_integer() and str(int(value)) in DURATIONS:
            return str(int(value))
        return value

    @field_validator("cfg_scale", mode="before")
    @classmethod
    def _cfg_number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"got {value!r}")
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"got {value!r}")
        return float(value)

    # -- construction with friendly errors -------------------------------------------------
    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> KlingRequest:
        """Validate ``data``; raise :class:`InvalidRequest` with a one-line message on error."""
        if not isinstance(data, Mapping):
            raise InvalidRequest(f"a request must be a mapping of {', '.join(INPUT_FIELDS)}; got {data!r}")
        try:
            return cls(**dict(data))
        except ValidationError as exc:
            raise invalid_request_from(exc, data) from None

    # -- facts about the request -----------------------------------------------------------
    @property
    def duration_s(self) -> int:
        return int(self.duration)

    @property
    def output_size(self) -> tuple[int, int]:
        """Width and height of the video fal returns (720p)."""
        return OUTPUT_SIZES[self.aspect_ratio]

    def arguments(self) -> dict[str, Any]:
        """The JSON input sent to fal."""
        return {
            "prompt": self.prompt,
            "duration": self.duration,
            "aspect_ratio": self.aspect_ratio,
            "negative_prompt": self.negative_prompt,
            "cfg_scale": self.cfg_scale,
        }

    def cost_usd(self) -> float:
        """What fal charges for this request when it succeeds."""
        return price_usd(self.duration_s)

    def fingerprint(self, repeat: int = 0) -> str:
        """A stable hash of endpoint + canonical input + repeat index (hex, 32 chars).

        Two requests with the same inputs and repeat index share a fingerprint;
        ``repeat`` makes deliberate repeats distinct.
        """
        canonical = canonical_json({"endpoint": ENDPOINT, "input": self.arguments(), "repeat": int(repeat)})
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def _no_control_characters(value: str) -> str:
    """Refuse NUL, ESC (terminal escape sequences), BEL, CR, DEL, CSI...: a prompt never needs them,
    and a run log printed to a terminal must not carry them. Newlines and tabs are fine."""
    found = control_character(value)
    if found is not None:
        raise ValueError(f"contains the control character {found[0]!r} at position {found[1]}")
    return value


def invalid_request_from(exc: ValidationError, data: Mapping[str, Any] | None = None) -> InvalidRequest:
    """Turn pydantic's multi-line error into one line naming the field and what is allowed."""
    first = exc.errors()[0]
    loc = first.get("loc") or ()
    field = str(loc[0]) if loc else None
    if first.get("type") == "extra_forbidden":
        return InvalidRequest(f"unknown input {field!r}; allowed inputs: {', '.join(INPUT_FIELDS)}", field=field)
    if first.get("type") == "missing":
        return InvalidRequest(f"{field}: required; must be {_ALLOWED.get(field or '', 'set')}", field=field)
    got = first.get("input")
    if field in ("prompt", "negative_prompt") and isinstance(got, str):
        if control_character(got):  # name the character; never echo the text (it may drive a terminal)
            return InvalidRequest(f"{field}: {first.get('ctx', {}).get('error')}; not allowed in a prompt", field=field)
        got_text = f"{len(got)} characters" if len(got) > 60 else repr(got)
    else:
        got_text = repr(got)
    allowed = _ALLOWED.get(field or "", "")
    hint = ""
    if field == "aspect_ratio" and type(got) is int and got in _BASE_60_ASPECTS:
        ratio = _BASE_60_ASPECTS[got]
        hint = f' (YAML reads an unquoted {ratio} as the base-60 number {got}: quote it, "{ratio}")'
    return InvalidRequest(f"{field}: must be {allowed}; got {got_text}{hint}", field=field)
