"""The ``vlm`` judge: one clip to a fal vision-language endpoint, scored on a rubric.

Default endpoint ``fal-ai/video-understanding`` ($0.01 per 5 s of clip); ``endpoint=
"openrouter/router/video"`` (with ``model=``, default ``google/gemini-2.5-flash``) sends the clip
to a video LLM billed per token. The question carries the clip's prompt (between ``<prompt>``
tags), its negative prompt, the rubric's dimensions and a JSON Schema of the answer; the answer is
validated (:meth:`~kling_lab.judges.rubric.Rubric.parse`) and asked once more when invalid.
:class:`FalJudge` holds what the vlm and pairwise judges share.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

from kling_lab.errors import InvalidInput
from kling_lab.judges.base import Kind, Run
from kling_lab.judges.rubric import DEFAULT_RUBRIC, SCHEMA_LINE, Rubric
from kling_lab.models.judging import (
    DEFAULT_ROUTER_MODEL,
    JUDGE_ENDPOINTS,
    VIDEO_UNDERSTANDING,
    OpenRouterVideo,
    judge_endpoint,
)
from kling_lab.runner.judge_call import Clip, JudgeCall, Parsed

TEMPLATE_VERSION = 1  # bump when the wording of the question changes (it is part of the rubric hash)
ASK_AGAIN = (
    "\n\nYour previous answer could not be used ({error}). Reply again with only the JSON object described above."
)


class FalJudge:
    """A judge that sends clips to a fal endpoint with a rubric (subclasses: the question and the answer)."""

    kind: ClassVar[Kind] = "single"
    clips_per_call: ClassVar[int] = 1
    factory: ClassVar[str] = "vlm"
    default_rubric: ClassVar[Rubric] = DEFAULT_RUBRIC

    def __init__(
        self,
        *,
        name: str | None = None,
        rubric: Rubric | Mapping[str, Any] | str | None = None,
        endpoint: str = VIDEO_UNDERSTANDING,
        model: str | None = None,
        max_tokens: int | None = None,
        usd_per_call: float | None = None,
    ) -> None:
        self.name = name or self.factory
        self.rubric = Rubric.load(rubric) if rubric is not None else self.default_rubric
        spec = judge_endpoint(endpoint)
        if spec is None:
            raise InvalidInput(
                f"judge {self.name!r}: endpoint {endpoint!r} is not a judge endpoint kling_lab knows; "
                f"choose one of: {', '.join(JUDGE_ENDPOINTS)}"
            )
        if spec.videos < self.clips_per_call:
            raise InvalidInput(
                f"judge {self.name!r}: {endpoint} takes {spec.videos} clip per request; a {self.kind} judge needs "
                f"{self.clips_per_call} (use openrouter/router/video)"
            )
        routed = isinstance(spec, OpenRouterVideo)
        if model is not None and not routed:
            raise InvalidInput(f"judge {self.name!r}: {endpoint} has no model to choose (model= is for a router)")
        if usd_per_call is not None and not usd_per_call >= 0:
            raise InvalidInput(f"judge {self.name!r}: usd_per_call must be >= 0; got {usd_per_call!r}")
        self.spec_endpoint = spec
        self.endpoint = spec.id
        self.model = (model or DEFAULT_ROUTER_MODEL) if routed else None
        self.max_tokens = max_tokens
        self.usd_per_call = usd_per_call

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, endpoint={self.endpoint!r}, rubric={self.rubric_hash[:12]})"

    @property
    def rubric_hash(self) -> str:
        return self.rubric.digest(
            kind=self.kind,
            endpoint=self.endpoint,
            model=self.model,
            max_tokens=self.max_tokens,
            template=TEMPLATE_VERSION,
        )

    def spec(self) -> dict[str, Any]:
        options = {
            "name": self.name,
            "rubric": self.rubric.model_dump(mode="json"),
            "endpoint": self.endpoint,
            "model": self.model,
            "max_tokens": self.max_tokens,
            "usd_per_call": self.usd_per_call,
        }
        return {"factory": self.factory, "options": options}

    # -- money ---------------------------------------------------------------------------------
    def price(self, clips: Sequence[Clip]) -> Decimal:
        """What one call on ``clips`` costs at most (InvalidInput when kling_lab cannot price it)."""
        found = self.spec_endpoint.max_usd([c.seconds for c in clips], model=self.model, max_tokens=self.max_tokens)
        if found is not None:
            return found
        if self.usd_per_call is not None:
            return Decimal(str(self.usd_per_call))
        raise InvalidInput(
            f"judge {self.name!r}: no price known for model {self.model!r} on {self.endpoint}; "
            "give usd_per_call (an upper bound per call) or choose a model kling_lab knows"
        )

    def describe_price(self) -> str:
        return self.spec_endpoint.describe()

    # -- the question --------------------------------------------------------------------------
    def question(self, runs: Sequence[Run]) -> str:
        run = runs[0]
        negative = str(run.get("negative_prompt") or "").strip() or "(none)"
        return (
            f"The clip was generated from this prompt:\n<prompt>\n{run.get('prompt') or ''}\n</prompt>\n"
            f"Negative prompt (what the clip must not show): {negative}\n\n"
            f"Judge the clip on these dimensions:\n{self.rubric.criteria()}\n\n"
            "Reply with one JSON object and nothing else (no prose, no code fence), including an "
            '"explanation" of one or two sentences.\n'
            f"{SCHEMA_LINE} {json.dumps(self.answer_schema(), ensure_ascii=False, separators=(',', ':'))}"
        )

    def answer_schema(self) -> dict[str, Any]:
        return self.rubric.json_schema()

    def parse(self, text: str) -> Parsed:
        return self.rubric.parse(text)

    def call(self, runs: Sequence[Run], clips: Sequence[Clip]) -> JudgeCall:
        """The call judging ``clips`` (their runs' rows in ``runs``, same order)."""
        arguments = self.spec_endpoint.arguments(
            prompt=self.question(runs),
            system_prompt=self.rubric.instructions,
            model=self.model,
            max_tokens=self.max_tokens,
        )
        first = runs[0]
        return JudgeCall(
            judge=self.name,
            kind=self.kind,
            rubric_hash=self.rubric_hash,
            endpoint=self.spec_endpoint,
            arguments=arguments,
            clips=tuple(clips),
            price=self.price(clips),
            parse=self.parse,
            ask_again=ask_again,
            columns={"sweep_id": first.get("sweep_id"), "prompt": first.get("prompt")},
            resume_meta={"judge_spec": self.spec(), "runs": [_run_facts(r) for r in runs]},
        )


def ask_again(arguments: dict[str, Any], error: str) -> dict[str, Any]:
    """The same question with a note on what was wrong with the first answer."""
    return {**arguments, "prompt": str(arguments.get("prompt", "")) + ASK_AGAIN.format(error=error[:300])}


def _run_facts(run: Run) -> dict[str, Any]:
    """What a resumed call needs to ask its question again."""
    return {k: _plain(run.get(k)) for k in ("run_id", "sweep_id", "prompt", "negative_prompt")}


def _plain(value: Any) -> Any:
    try:
        import pandas as pd

        if value is None or pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value) if value is not None else None


class VlmJudge(FalJudge):
    """Scores one clip on a rubric (default: prompt adherence, visual quality, motion realism 1–5;
    artifacts and negative-prompt violations as lists)."""


__all__ = ["ASK_AGAIN", "TEMPLATE_VERSION", "FalJudge", "VlmJudge", "ask_again"]
