"""The judge endpoints as the emulator serves them: fal's shapes, deterministic PLACEHOLDER answers.

- ``fal-ai/video-understanding``: ``{"video_url", "prompt", "detailed_analysis"}`` → ``{"output": str}``,
  billed $0.01 per 5 s of the clip;
- ``openrouter/router/video``: ``{"video_urls" | "video_url", "prompt", "model", "system_prompt",
  ...}`` → ``{"output": str, "usage": {"prompt_tokens", "completion_tokens", "total_tokens",
  "cost"}}``, billed per token at the model's rates.

No model looks at anything. The answer is derived from what the emulator itself rendered into the
clip (every placeholder clip carries prompt, negative prompt, cfg_scale and length in its
``comment`` metadata tag, so any emulator instance reads them back):
when the prompt the judge is asked about (between ``<prompt>`` and ``</prompt>``) is the one the clip was
rendered from, prompt adherence rises with cfg_scale; otherwise it is 1. Visual quality is higher
with a negative prompt, motion realism falls with cfg_scale (faster drift), each with a small
per-clip jitter. The answer follows the JSON Schema the prompt carries (after ``JSON Schema:``), so a
user's own rubric gets its own keys, and its explanation says it is a placeholder. A clip this
emulator did not render gets middle scores. ``rate_bad_judge_output`` makes answers invalid (prose,
or a score out of range), deterministically per request, to exercise the judges' retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from kling_lab.backends.emulator.endpoints import FileUrl, ModelEndpoint, Rendered, Workshop
from kling_lab.backends.emulator.queue import Job, JobFailed
from kling_lab.models.judging import (
    DEFAULT_ROUTER_MODEL,
    JUDGE_ENDPOINTS,
    TOKEN_RATES,
    OpenRouterVideo,
    OpenRouterVideoInput,
    VideoUnderstanding,
    VideoUnderstandingInput,
)
from kling_lab.util.hashing import sha256_file

PLACEHOLDER = "kling_lab emulator PLACEHOLDER judgement, not a model's opinion"
SCHEMA_MARKER = "JSON Schema:"
CHARS_PER_TOKEN = 4


def _unit(*parts: object) -> float:
    """A uniform number in [0, 1) fixed by ``parts``."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, math.floor(value + 0.5)))


def asked_prompt(text: str) -> str | None:
    """The clip prompt a judge prompt asks about: the text between ``<prompt>`` and ``</prompt>``."""
    start, end = text.find("<prompt>"), text.find("</prompt>")
    if start < 0 or end < start:
        return None
    return text[start + len("<prompt>") : end].strip()


def asked_schema(text: str) -> dict[str, Any]:
    """The JSON Schema the prompt asks the answer to follow ({} when it carries none)."""
    at = text.find(SCHEMA_MARKER)
    brace = text.find("{", at) if at >= 0 else -1
    if brace < 0:
        return {}
    try:
        schema, _ = json.JSONDecoder().raw_decode(text[brace:])
    except ValueError:
        return {}
    return schema if isinstance(schema, dict) else {}


def placeholder_scores(facts: Rendered | None, sha256: str, prompt: str | None, seed: int) -> dict[str, float]:
    """The three default dimensions of one clip, before rounding to the rubric's range."""
    jitter = {d: _unit(seed, sha256, d) - 0.5 for d in ("prompt_adherence", "visual_quality", "motion_realism")}
    if facts is None:
        return {d: 3.0 + j * 0.5 for d, j in jitter.items()}
    matches = prompt is not None and prompt.strip() == facts.prompt.strip()
    return {
        "prompt_adherence": (2.0 + 3.0 * facts.cfg_scale + jitter["prompt_adherence"]) if matches else 1.0,
        "visual_quality": 3.5 + (0.5 if facts.negative_prompt.strip() else -0.5) + jitter["visual_quality"],
        "motion_realism": 4.5 - 2.5 * facts.cfg_scale + jitter["motion_realism"],
    }


def _explanation(facts: Rendered | None, prompt: str | None) -> str:
    if facts is None:
        return f"{PLACEHOLDER}: this clip was not rendered by a kling_lab emulator, so every score is middling."
    match = "matches" if prompt is not None and prompt.strip() == facts.prompt.strip() else "does NOT match"
    return (
        f"{PLACEHOLDER}: derived from what the emulator rendered (cfg_scale {facts.cfg_scale:.2f}, "
        f"negative prompt {'set' if facts.negative_prompt.strip() else 'empty'}); the asked prompt {match} "
        "the one the clip was rendered from."
    )


def _value(name: str, spec: Any, base: dict[str, float], unit: float, explanation: str) -> Any:
    """One answer field following its schema: integers in range, lists, text."""
    spec = spec if isinstance(spec, dict) else {}
    kind = spec.get("type")
    if kind in ("integer", "number"):
        low = int(spec.get("minimum", 1))
        high = int(spec.get("maximum", 5))
        if name in base:
            raw = low + (base[name] - 1.0) * (high - low) / 4.0  # the defaults are on a 1-5 scale
        else:
            raw = low + unit * (high - low)
        return _clamp(raw, low, high)
    if kind == "array":
        if name == "artifacts":
            return ["text panel (emulator placeholder)"]
        return []
    if kind == "boolean":
        return False
    if name == "explanation":
        return explanation
    enum = spec.get("enum")
    if isinstance(enum, list) and enum:
        return enum[int(unit * len(enum))]
    return "placeholder"


def answer(text: str, clips: list[tuple[str, Rendered | None]], seed: int) -> dict[str, Any]:
    """The placeholder answer to judge prompt ``text`` about ``clips`` ((sha256, what was rendered) each)."""
    schema = asked_schema(text)
    found = schema.get("properties")
    properties: dict[str, Any] = found if isinstance(found, dict) else {}
    prompt = asked_prompt(text)
    if "preferred" in properties or len(clips) > 1:
        totals = [sum(placeholder_scores(facts, sha, prompt, seed).values()) for sha, facts in clips[:2]]
        totals += [0.0] * (2 - len(totals))
        preferred = "A" if totals[0] > totals[1] + 0.25 else "B" if totals[1] > totals[0] + 0.25 else "tie"
        return {
            "preferred": preferred,
            "explanation": f"{PLACEHOLDER}: clip A scores {totals[0]:.2f}, clip B {totals[1]:.2f} "
            "(sums of placeholder scores derived from what the emulator rendered).",
        }
    sha, facts = clips[0]
    base = placeholder_scores(facts, sha, prompt, seed)
    explanation = _explanation(facts, prompt)
    fields = properties or {d: {"type": "integer", "minimum": 1, "maximum": 5} for d in base}
    result = {name: _value(name, spec, base, _unit(seed, sha, name), explanation) for name, spec in fields.items()}
    if "explanation" not in result:
        result["explanation"] = explanation
    return result


def garbled(valid: dict[str, Any], unit: float) -> str:
    """An invalid answer: prose around no JSON, or a score out of any 1-5 range."""
    if unit < 0.5 or not any(isinstance(v, int) and not isinstance(v, bool) for v in valid.values()):
        return "Sure! Overall the clip looks fine to me, although the motion is a little fast."
    broken = {k: (99 if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in valid.items()}
    return json.dumps(broken)


class _JudgeEndpoint(ModelEndpoint[BaseModel]):
    """The common work: find the clips, answer from what was rendered, maybe garble it."""

    def cost_usd(self, value: BaseModel) -> float:
        return 0.0  # known once the clips are found (set on the job)

    def _urls(self, value: BaseModel) -> list[str]:
        raise NotImplementedError

    def _prompt(self, value: BaseModel) -> str:
        raise NotImplementedError

    async def run(self, job: Job, shop: Workshop) -> dict[str, Any]:
        value = job.input
        clips: list[tuple[str, Rendered | None]] = []
        seconds: list[float] = []
        for url in self._urls(value):
            path = shop.local_file(url)
            if path is None:
                raise JobFailed(f"Failed to download the video from {url[:200]}", "file_download_error")
            sha = await asyncio.to_thread(sha256_file, path)
            facts = await asyncio.to_thread(Rendered.read, path)
            clips.append((sha, facts))
            seconds.append(facts.duration_s if facts is not None else await asyncio.to_thread(_seconds, path))
        job.log(f"Judging {len(clips)} clip(s) with placeholder scores (kling_lab emulator: no model looks)")
        config = shop.config
        text = self._prompt(value)
        valid = answer(text, clips, config.seed)
        if config.chance(config.rate_bad_judge_output, job.key, "bad_judge_output"):
            shop.faults.count("bad_judge_output")
            output = garbled(valid, config.uniform(job.key, "garble", 0))
        else:
            output = json.dumps(valid, ensure_ascii=False)
        return self._result(job, value, output, seconds)

    def _result(self, job: Job, value: BaseModel, output: str, seconds: list[float]) -> dict[str, Any]:
        raise NotImplementedError

    def output(self, job: Job, file_url: FileUrl) -> dict[str, Any]:
        result: dict[str, Any] = job.result
        return result


class VideoUnderstandingEndpoint(_JudgeEndpoint):
    """``fal-ai/video-understanding`` (one clip, text back, $0.01 per 5 s of it)."""

    spec = VideoUnderstanding()
    endpoint_id = spec.id
    input_model = VideoUnderstandingInput
    notes = (f"kling_lab emulator: a local stand-in for {spec.id}; answers are placeholders, not a model's",)

    def _urls(self, value: BaseModel) -> list[str]:
        return [value.video_url]  # type: ignore[attr-defined]

    def _prompt(self, value: BaseModel) -> str:
        return str(value.prompt)  # type: ignore[attr-defined]

    def _result(self, job: Job, value: BaseModel, output: str, seconds: list[float]) -> dict[str, Any]:
        job.cost_usd = float(self.spec.max_usd(seconds))
        return {"output": output}


class OpenRouterVideoEndpoint(_JudgeEndpoint):
    """``openrouter/router/video`` (one or more clips to a video LLM; billed per token)."""

    spec = OpenRouterVideo()
    endpoint_id = spec.id
    input_model = OpenRouterVideoInput
    notes = (f"kling_lab emulator: a local stand-in for {spec.id}; answers are placeholders, not a model's",)

    def _urls(self, value: BaseModel) -> list[str]:
        urls = value.video_urls or [value.video_url]  # type: ignore[attr-defined]
        return [u for u in urls if u]

    def _prompt(self, value: BaseModel) -> str:
        system = value.system_prompt or ""  # type: ignore[attr-defined]
        return f"{system}\n\n{value.prompt}"  # type: ignore[attr-defined]

    def _result(self, job: Job, value: BaseModel, output: str, seconds: list[float]) -> dict[str, Any]:
        rates = TOKEN_RATES.get(value.model) or TOKEN_RATES[DEFAULT_ROUTER_MODEL]  # type: ignore[attr-defined]
        prompt_tokens = len(self._prompt(value)) // CHARS_PER_TOKEN + sum(math.ceil(s * 300) for s in seconds)
        completion_tokens = max(1, len(output) // CHARS_PER_TOKEN)
        cost = float(rates.usd(prompt_tokens, completion_tokens))
        job.cost_usd = cost
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost": round(cost, 7),
        }
        return {"output": output, "usage": usage}


JUDGE_SERVERS: dict[str, type[_JudgeEndpoint]] = {
    cls.endpoint_id: cls for cls in (VideoUnderstandingEndpoint, OpenRouterVideoEndpoint)
}
assert set(JUDGE_SERVERS) == set(JUDGE_ENDPOINTS), "every judge endpoint kling_lab uses is emulated"


def judge_endpoint(endpoint_id: str) -> ModelEndpoint[Any] | None:
    """The emulated judge endpoint with this id (None for any other id)."""
    cls = JUDGE_SERVERS.get(endpoint_id)
    return cls() if cls is not None else None


def _seconds(path: Path) -> float:
    from kling_lab.media.probe import probe

    try:
        return float(probe(path)["video_duration_s"] or 5.0)
    except Exception:  # noqa: BLE001 - an unreadable clip is priced as one unit
        return 5.0


__all__ = [
    "JUDGE_SERVERS",
    "PLACEHOLDER",
    "OpenRouterVideoEndpoint",
    "VideoUnderstandingEndpoint",
    "answer",
    "asked_prompt",
    "asked_schema",
    "judge_endpoint",
]
