"""The ``pairwise`` judge: two clips of the same prompt to a video LLM, which says which is better.

The direct counterpart of a human A/B vote. Both clips go in one request to
``openrouter/router/video`` (``video_urls``: clip A first, clip B second), clips ordered by sha256 so
a pair is always asked the same way (and cached once); the answer is ``{"preferred": "A" | "B" |
"tie", "explanation"}``. The rubric's dimensions are the criteria the judge is asked to weigh.
Models favour one position more often than chance would (position bias): compare its agreement
with your votes (:func:`kling_lab.judges.agreement.judge_agreement`) before trusting it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from kling_lab.judges.base import Kind, Run
from kling_lab.judges.rubric import PAIRWISE_RUBRIC, SCHEMA_LINE, Rubric, json_object
from kling_lab.judges.vlm import FalJudge
from kling_lab.models.judging import OPENROUTER_VIDEO
from kling_lab.runner.judge_call import InvalidOutput, Parsed


class _Preference(BaseModel):
    model_config = ConfigDict(extra="ignore")

    preferred: Literal["A", "B", "tie"]
    explanation: str = ""


class PairwiseJudge(FalJudge):
    """Prefers one of two clips made from the same prompt."""

    kind: ClassVar[Kind] = "pairwise"
    clips_per_call: ClassVar[int] = 2
    factory: ClassVar[str] = "pairwise"
    default_rubric: ClassVar[Rubric] = PAIRWISE_RUBRIC

    def __init__(self, *, endpoint: str = OPENROUTER_VIDEO, **options: Any) -> None:
        super().__init__(endpoint=endpoint, **options)

    def answer_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "preferred": {"type": "string", "enum": ["A", "B", "tie"]},
                "explanation": {"type": "string", "description": "one or two sentences"},
            },
            "required": ["preferred", "explanation"],
        }

    def question(self, runs: Sequence[Run]) -> str:
        run = runs[0]
        negative = str(run.get("negative_prompt") or "").strip() or "(none)"
        import json

        return (
            "Both clips were generated from this prompt:\n"
            f"<prompt>\n{run.get('prompt') or ''}\n</prompt>\n"
            f"Negative prompt (what a clip must not show): {negative}\n\n"
            "Clip A is the first video, clip B the second. Which one is better? Weigh:\n"
            f"{self.rubric.criteria()}\n\n"
            'Reply with one JSON object and nothing else: "preferred" is "A", "B" or "tie" (only when neither is '
            'better), with an "explanation" of one or two sentences.\n'
            f"{SCHEMA_LINE} {json.dumps(self.answer_schema(), separators=(',', ':'))}"
        )

    def parse(self, text: str) -> Parsed:
        value = json_object(text)
        try:
            answer = _Preference.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidOutput(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
        return Parsed(
            scores={"preferred": answer.preferred}, explanation=answer.explanation or None, preferred=answer.preferred
        )


__all__ = ["PairwiseJudge"]
