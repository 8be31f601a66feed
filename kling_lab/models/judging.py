"""The fal vision-language endpoints judges send clips to: input schemas, prices, and the facts' source.

Read from fal's pages (``https://fal.ai/models/<endpoint>/llms.txt`` and fal's model API reference) on
2026-12-01:

- ``fal-ai/video-understanding``: ``video_url`` + ``prompt`` (+ ``detailed_analysis``) → ``{"output":
  str}``; "$0.01 per 5 seconds". kling_lab reads that as per 5 s of the video judged, rounded up
  (a 5 s clip $0.01, a 10 s clip $0.02).
- ``openrouter/router/video``: any video-capable LLM through OpenRouter: ``video_urls`` (or
  ``video_url``) + ``prompt`` + ``model`` (+ ``system_prompt``, ``reasoning``, ``temperature``,
  ``max_tokens``, as on the page of its sibling ``openrouter/router/vision``) → ``{"output": str,
  "usage": {"prompt_tokens", "completion_tokens", "total_tokens", "cost"}}``; billed per token. The
  budget reserves an upper bound (:meth:`OpenRouterVideo.max_usd`: video tokens at Gemini's
  ~300 per second of video, a prompt allowance and ``max_tokens`` of output at the model's rates)
  and the row records ``usage.cost`` from fal's answer when it is there.

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

READ_ON = "2026-12-01"
VIDEO_UNDERSTANDING = "fal-ai/video-understanding"
OPENROUTER_VIDEO = "openrouter/router/video"
DEFAULT_ROUTER_MODEL = "google/gemini-2.5-flash"
VIDEO_TOKENS_PER_S = 300  # Gemini: 258 tokens per frame at 1 fps + 32 audio tokens per second
PROMPT_TOKEN_ALLOWANCE = 2000  # the rubric's prompt and schema (≈ 1,000 tokens), doubled
DEFAULT_MAX_TOKENS = 1024

_JUDGE_INPUT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class VideoUnderstandingInput(BaseModel):
    """``fal-ai/video-understanding``'s input."""

    model_config = _JUDGE_INPUT

    video_url: str = Field(min_length=1, description="URL of the video to analyze")
    prompt: str = Field(min_length=1, description="The question or prompt about the video content")
    detailed_analysis: bool = False


class OpenRouterVideoInput(BaseModel):
    """``openrouter/router/video``'s input (``video_urls`` and ``video_url`` are mutually exclusive)."""

    model_config = _JUDGE_INPUT

    video_urls: list[str] | None = Field(None, min_length=1)
    video_url: str | None = None
    prompt: str = Field(min_length=1)
    system_prompt: str | None = None
    model: str = Field(min_length=1)
    reasoning: bool = False
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_video_field(self) -> OpenRouterVideoInput:
        if (self.video_urls is None) == (self.video_url is None):
            raise ValueError("give exactly one of video_urls and video_url")
        return self


@dataclass(frozen=True)
class TokenRates:
    """A router model's price per million tokens, and where it was read."""

    usd_per_m_input: Decimal
    usd_per_m_output: Decimal
    source_url: str
    read_on: str = READ_ON

    def usd(self, input_tokens: int, output_tokens: int) -> Decimal:
        return (self.usd_per_m_input * input_tokens + self.usd_per_m_output * output_tokens) / 1_000_000


TOKEN_RATES: dict[str, TokenRates] = {
    "google/gemini-2.5-flash": TokenRates(
        Decimal("0.30"), Decimal("2.50"), "https://openrouter.ai/google/gemini-2.5-flash"
    ),
}


def output_text(result: Any) -> str | None:
    """The model's text in a judge endpoint's result (``{"output": str, ...}``), or None."""
    text = result.get("output") if isinstance(result, Mapping) else None
    return text if isinstance(text, str) else None


@dataclass(frozen=True)
class VideoUnderstanding:
    """``fal-ai/video-understanding``: one video, a prompt, text back; a known price per 5 s of video."""

    id: str = VIDEO_UNDERSTANDING
    schema: type[BaseModel] = VideoUnderstandingInput
    usd_per_unit: Decimal = Decimal("0.01")
    unit_s: int = 5
    source_url: str = "https://fal.ai/models/fal-ai/video-understanding/llms.txt"
    read_on: str = READ_ON
    videos: int = 1  # clips per request

    def describe(self) -> str:
        return f"${self.usd_per_unit} per {self.unit_s} s of video"

    def max_usd(
        self, video_seconds: Sequence[float], *, model: str | None = None, max_tokens: int | None = None
    ) -> Decimal:
        """What one request on these clips costs (exact: the price depends only on their length)."""
        units = sum(max(1, math.ceil(float(s) / self.unit_s - 1e-9)) for s in video_seconds)
        return self.usd_per_unit * units

    def billed_usd(self, result: Any, upper: Decimal) -> Decimal:
        return upper

    def arguments(
        self, *, prompt: str, system_prompt: str, model: str | None, max_tokens: int | None
    ) -> dict[str, Any]:
        """The input for one clip (its URL is filled in as ``video_url`` once known); the rubric's
        instructions go first in the prompt (this endpoint has no system prompt)."""
        return {"prompt": f"{system_prompt}\n\n{prompt}" if system_prompt else prompt, "detailed_analysis": False}

    def with_videos(self, arguments: Mapping[str, Any], urls: Sequence[str]) -> dict[str, Any]:
        (url,) = urls
        return {**arguments, "video_url": url}


@dataclass(frozen=True)
class OpenRouterVideo:
    """``openrouter/router/video``: one or more videos to a video-capable LLM; billed per token."""

    id: str = OPENROUTER_VIDEO
    schema: type[BaseModel] = OpenRouterVideoInput
    source_url: str = "https://fal.ai/models/openrouter/router/video/llms.txt"
    read_on: str = READ_ON
    videos: int = 2  # up to this many clips per request (pairwise sends two)

    def describe(self) -> str:
        return (
            "per token of the chosen model ("
            + ", ".join(f"{m}: ${r.usd_per_m_input}/M in, ${r.usd_per_m_output}/M out" for m, r in TOKEN_RATES.items())
            + ")"
        )

    def rates(self, model: str) -> TokenRates | None:
        return TOKEN_RATES.get(model)

    def max_usd(
        self, video_seconds: Sequence[float], *, model: str | None = None, max_tokens: int | None = None
    ) -> Decimal | None:
        """An upper bound of one request's cost (None for a model whose rates kling_lab does not know)."""
        rates = self.rates(model or DEFAULT_ROUTER_MODEL)
        if rates is None:
            return None
        tokens_in = PROMPT_TOKEN_ALLOWANCE + sum(math.ceil(float(s) * VIDEO_TOKENS_PER_S) for s in video_seconds)
        return rates.usd(tokens_in, max_tokens or DEFAULT_MAX_TOKENS).quantize(Decimal("0.000001"))

    def billed_usd(self, result: Any, upper: Decimal) -> Decimal:
        """``usage.cost`` from fal's answer when given, else the upper bound that was reserved."""
        usage = result.get("usage") if isinstance(result, Mapping) else None
        cost = usage.get("cost") if isinstance(usage, Mapping) else None
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and math.isfinite(cost) and cost >= 0:
            return Decimal(str(cost))
        return upper

    def arguments(
        self, *, prompt: str, system_prompt: str, model: str | None, max_tokens: int | None
    ) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "prompt": prompt,
            "model": model or DEFAULT_ROUTER_MODEL,
            "max_tokens": max_tokens or DEFAULT_MAX_TOKENS,
            "temperature": 0.0,
        }
        if system_prompt:
            arguments["system_prompt"] = system_prompt
        return arguments

    def with_videos(self, arguments: Mapping[str, Any], urls: Sequence[str]) -> dict[str, Any]:
        return {**arguments, "video_urls": list(urls)}


JudgeEndpoint = VideoUnderstanding | OpenRouterVideo
JUDGE_ENDPOINTS: dict[str, JudgeEndpoint] = {e.id: e for e in (VideoUnderstanding(), OpenRouterVideo())}


def judge_endpoint(endpoint_id: str) -> JudgeEndpoint | None:
    """A judge endpoint by fal id (None when kling_lab does not know it)."""
    return JUDGE_ENDPOINTS.get(endpoint_id)


__all__ = [
    "DEFAULT_ROUTER_MODEL",
    "JUDGE_ENDPOINTS",
    "OPENROUTER_VIDEO",
    "READ_ON",
    "TOKEN_RATES",
    "VIDEO_UNDERSTANDING",
    "JudgeEndpoint",
    "OpenRouterVideo",
    "OpenRouterVideoInput",
    "TokenRates",
    "VideoUnderstanding",
    "VideoUnderstandingInput",
    "judge_endpoint",
    "output_text",
]
