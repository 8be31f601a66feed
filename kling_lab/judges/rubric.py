"""A rubric: what a judge scores, how the question is put, and how the answer is checked.

User-editable as YAML (a file or a string) or a mapping::

    instructions: You are a strict reviewer of AI-generated video clips.   # optional
    dimensions:
      prompt_adherence: {min: 1, max: 5, description: Does the clip show what the prompt asks for?}
      hands: Are hands and fingers anatomically plausible?                  # shorthand: a 1-5 score
      artifacts: {type: list, description: Visible artifacts (melting, flicker, extra limbs)}

A dimension is a ``score`` (an integer from ``min`` to ``max``, 1–5 by default) or a ``list`` (of short
strings). The judge is asked for one JSON object following a JSON Schema built from the dimensions
(plus an ``explanation``); the answer is validated with a pydantic model built the same way, so a
score out of range or a missing key is an invalid answer (asked once more, see
:mod:`kling_lab.runner.judging`). :meth:`Rubric.digest` is part of every judgement's cache key.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from kling_lab.errors import InvalidInput
from kling_lab.runner.judge_call import InvalidOutput, Parsed
from kling_lab.util.safe_yaml import load_yaml
from kling_lab.util.text import canonical_json

RESERVED = frozenset({"explanation", "preferred"})
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
SCHEMA_LINE = "JSON Schema:"

DEFAULT_INSTRUCTIONS = (
    "You are a strict, calibrated reviewer of short AI-generated video clips. Judge only what is visible "
    "in the clip; do not reward a clip for what the prompt says it should show."
)
PAIRWISE_INSTRUCTIONS = (
    "You are a strict, calibrated reviewer of short AI-generated video clips. You see two clips made from "
    "the same prompt: clip A is the first video, clip B the second. Decide which one is better overall."
)


class Dimension(BaseModel):
    """One thing the judge scores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["score", "list"] = "score"
    min: int = 1
    max: int = 5
    description: str = ""

    @model_validator(mode="after")
    def _range(self) -> Dimension:
        if self.type == "score" and not self.min < self.max:
            raise ValueError(f"min must be less than max; got {self.min} and {self.max}")
        return self

    def describe(self) -> str:
        kind = f"integer {self.min}–{self.max}" if self.type == "score" else "list of short strings"
        return f"({kind}){': ' + self.description if self.description else ''}"

    def json_schema(self) -> dict[str, Any]:
        if self.type == "list":
            return {"type": "array", "items": {"type": "string"}, "description": self.description}
        return {"type": "integer", "minimum": self.min, "maximum": self.max, "description": self.description}


class Rubric(BaseModel):
    """Instructions and dimensions; see the module docstring for the YAML form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instructions: str = DEFAULT_INSTRUCTIONS
    dimensions: dict[str, Dimension] = Field(default_factory=dict)

    @field_validator("dimensions", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """``name: "description"`` is a 1–5 score; ``name: null`` one without a description."""
        if isinstance(value, Mapping):
            return {k: ({"description": v} if isinstance(v, str) else {} if v is None else v) for k, v in value.items()}
        return value

    @field_validator("dimensions")
    @classmethod
    def _names(cls, value: dict[str, Dimension]) -> dict[str, Dimension]:
        if not value:
            raise ValueError("no dimensions: give at least one under dimensions:")
        for name in value:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise ValueError(f"{name!r}: a dimension name is lower-case letters, digits and _ (e.g. hands)")
            if name in RESERVED:
                raise ValueError(f"{name!r} is reserved for the judge's own answer")
        return value

    # -- loading -----------------------------------------------------------------------------
    @classmethod
    def load(cls, source: Rubric | Mapping[str, Any] | str | os.PathLike[str]) -> Rubric:
        """A rubric from a Rubric, a mapping, a YAML file path or YAML text (one line on bad input)."""
        if isinstance(source, Rubric):
            return source
        if isinstance(source, os.PathLike) or (
            isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
        ):
            path = Path(source).expanduser()
            if not path.is_file():
                raise InvalidInput(f"rubric: no such file: {source}")
            source = path.read_text(encoding="utf-8")
        if isinstance(source, str):
            try:
                source = load_yaml(source)
            except InvalidInput as exc:
                raise InvalidInput(f"rubric: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - any YAML error is one line
                raise InvalidInput(f"rubric: not valid YAML ({' '.join(str(exc).split())[:200]})") from None
        if not isinstance(source, Mapping):
            raise InvalidInput("rubric: expected a mapping with dimensions: (and optionally instructions:)")
        try:
            return cls.model_validate(dict(source))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            message = str(first.get("msg", "")).removeprefix("Value error, ")
            raise InvalidInput(f"rubric: {where}: {message}" if where else f"rubric: {message}") from None

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)

    # -- identity ----------------------------------------------------------------------------
    def digest(self, **context: Any) -> str:
        """sha256 of the rubric and ``context`` (endpoint, model, prompt template version, ...)."""
        import hashlib

        text = canonical_json({"rubric": self.model_dump(mode="json"), **context})
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    # -- the question --------------------------------------------------------------------------
    def scored(self) -> list[str]:
        """The score dimensions (numbers), in order."""
        return [name for name, d in self.dimensions.items() if d.type == "score"]

    def json_schema(self) -> dict[str, Any]:
        properties = {name: d.json_schema() for name, d in self.dimensions.items()}
        properties["explanation"] = {"type": "string", "description": "one or two sentences"}
        return {"type": "object", "properties": properties, "required": [*self.dimensions, "explanation"]}

    def criteria(self) -> str:
        return "\n".join(f"- {name} {d.describe()}" for name, d in self.dimensions.items())

    # -- the answer ----------------------------------------------------------------------------
    @cached_property
    def answer_model(self) -> type[BaseModel]:
        fields: dict[str, Any] = {}
        for name, d in self.dimensions.items():
            if d.type == "list":
                fields[name] = (list[Annotated[str, Field(max_length=500)]], ...)
            else:
                fields[name] = (Annotated[int, Field(ge=d.min, le=d.max)], ...)
        fields["explanation"] = (str, "")
        return create_model("JudgeAnswer", __config__=ConfigDict(extra="ignore"), **fields)

    def parse(self, text: str) -> Parsed:
        """The validated scores in ``text`` (raises :class:`InvalidOutput`, saying what is wrong)."""
        value = json_object(text)
        try:
            answer = self.answer_model.model_validate(value)
        except ValidationError as exc:
            raise InvalidOutput(_first_error(exc)) from None
        data = answer.model_dump()
        explanation = data.pop("explanation", "") or None
        return Parsed(scores=data, explanation=explanation)


def json_object(text: str) -> dict[str, Any]:
    """The first JSON object in a model's text (code fences and prose around it are ignored)."""
    start = text.find("{")
    while start >= 0:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    raise InvalidOutput("the answer holds no JSON object")


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', '')}" if where else str(first.get("msg", ""))


DEFAULT_RUBRIC = Rubric(
    dimensions={
        "prompt_adherence": Dimension(description="How fully does the clip show what the prompt asks for?"),
        "visual_quality": Dimension(description="Sharpness, lighting, colour, coherent detail."),
        "motion_realism": Dimension(description="Is the motion physically plausible, smooth and consistent?"),
        "artifacts": Dimension(
            type="list", description="Visible artifacts: melting or extra limbs, warping, flicker, garbled text."
        ),
        "negative_prompt_violations": Dimension(
            type="list", description="Things the negative prompt excludes that the clip shows anyway."
        ),
    }
)
PAIRWISE_RUBRIC = Rubric(
    instructions=PAIRWISE_INSTRUCTIONS,
    dimensions={
        "prompt_adherence": Dimension(description="Which clip shows more fully what the prompt asks for?"),
        "visual_quality": Dimension(description="Which clip looks better: sharpness, lighting, coherent detail?"),
        "motion_realism": Dimension(description="Whose motion is more physically plausible and consistent?"),
    },
)

__all__ = ["DEFAULT_RUBRIC", "PAIRWISE_RUBRIC", "Dimension", "Rubric", "json_object"]
