"""The emulator's judge endpoints through the real fal_client: fal's request and response shapes,
placeholder answers derived from what the emulator rendered, the invalid-answer fault."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import fal_client
import pytest
from fal_client.client import FalClientHTTPError

from kling_lab.backends.emulator import EmulatorServer
from kling_lab.backends.emulator.judging import PLACEHOLDER, asked_prompt, asked_schema
from kling_lab.judges.vlm import VlmJudge
from kling_lab.models.judging import OPENROUTER_VIDEO, VIDEO_UNDERSTANDING
from kling_lab.request import ENDPOINT

PROMPT = "A red fox trotting through fresh snow"


def run(scenario: Callable[[fal_client.AsyncClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        c = fal_client.AsyncClient(key="test-key")
        try:
            return await scenario(c)
        finally:
            await (await c._client).aclose()

    return asyncio.run(main())


async def clip_url(c: fal_client.AsyncClient, prompt: str = PROMPT, cfg_scale: float = 0.75, negative: str = "") -> str:
    """A placeholder clip rendered by the emulator: its result URL."""
    handle = await c.submit(ENDPOINT, arguments={"prompt": prompt, "cfg_scale": cfg_scale, "negative_prompt": negative})
    result = await handle.get()
    return str(result["video"]["url"])


def question(prompt: str) -> str:
    """The vlm judge's own question about a clip of ``prompt``."""
    return VlmJudge().question([{"prompt": prompt, "negative_prompt": ""}])


def test_video_understanding_has_fals_request_and_response_shapes(emulator: EmulatorServer) -> None:
    async def scenario(c: fal_client.AsyncClient) -> tuple[dict[str, Any], dict[str, Any], str]:
        url = await clip_url(c)
        right = await (
            await c.submit(VIDEO_UNDERSTANDING, arguments={"video_url": url, "prompt": question(PROMPT)})
        ).get()
        wrong = await (
            await c.submit(
                VIDEO_UNDERSTANDING, arguments={"video_url": url, "prompt": question("A lighthouse at night")}
            )
        ).get()
        return right, wrong, url

    right, wrong, _ = run(scenario)
    assert set(right) == {"output"} and isinstance(right["output"], str)  # fal's page: {"output": str}
    answer = json.loads(right["output"])
    assert set(answer) == {
        "prompt_adherence", "visual_quality", "motion_realism", "artifacts", "negative_prompt_violations", "explanation"
    }  # fmt: skip
    assert answer["prompt_adherence"] == 4  # the clip's own prompt: 2 + 3 × 0.75 (± jitter) → 4
    assert json.loads(wrong["output"])["prompt_adherence"] == 1  # it does not: 1
    assert PLACEHOLDER in answer["explanation"] and "does NOT match" in json.loads(wrong["output"])["explanation"]
    stats = emulator.stats()
    assert stats["billed_usd"] == pytest.approx(1.40 + 2 * 0.01)  # the clip, then $0.01 per 5 s judged


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"prompt": "x"}, "video_url"),
        ({"video_url": "https://example.com/a.mp4"}, "prompt"),
        ({"video_url": "https://example.com/a.mp4", "prompt": "x", "temperature": 0.2}, "temperature"),
    ],
)
def test_video_understanding_refuses_what_fals_schema_refuses(emulator: EmulatorServer, arguments, field) -> None:
    async def scenario(c: fal_client.AsyncClient) -> FalClientHTTPError:
        with pytest.raises(FalClientHTTPError) as caught:
            await c.submit(VIDEO_UNDERSTANDING, arguments=arguments)
        return caught.value

    error = run(scenario)
    assert error.status_code == 422 and field in json.dumps(error.response.json()["detail"])
    assert emulator.stats()["submissions"] == 0


def test_openrouter_video_answers_with_usage_and_a_preference(emulator: EmulatorServer) -> None:
    from kling_lab.judges.pairwise import PairwiseJudge

    judge = PairwiseJudge()
    prompt = judge.question([{"prompt": PROMPT, "negative_prompt": ""}])

    async def scenario(c: fal_client.AsyncClient) -> dict[str, Any]:
        fast = await clip_url(c, cfg_scale=1.0)
        slow = await clip_url(c, cfg_scale=0.0, negative="blur")
        arguments = {"video_urls": [slow, fast], "prompt": prompt, "model": "google/gemini-2.5-flash"}
        return dict(await (await c.submit(OPENROUTER_VIDEO, arguments=arguments)).get())

    result = run(scenario)
    assert set(result) == {"output", "usage"}
    assert set(result["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens", "cost"}
    assert result["usage"]["total_tokens"] == result["usage"]["prompt_tokens"] + result["usage"]["completion_tokens"]
    answer = json.loads(result["output"])
    assert set(answer) == {"preferred", "explanation"} and answer["preferred"] in ("A", "B", "tie")
    assert judge.parse(result["output"]).preferred == answer["preferred"]


def test_openrouter_video_takes_exactly_one_of_video_urls_and_video_url(emulator: EmulatorServer) -> None:
    async def scenario(c: fal_client.AsyncClient) -> FalClientHTTPError:
        with pytest.raises(FalClientHTTPError) as caught:
            await c.submit(OPENROUTER_VIDEO, arguments={"prompt": "x", "model": "m"})
        return caught.value

    assert run(scenario).status_code == 422


def test_a_clip_the_emulator_cannot_fetch_fails_the_request(emulator: EmulatorServer) -> None:
    async def scenario(c: fal_client.AsyncClient) -> Any:
        handle = await c.submit(
            VIDEO_UNDERSTANDING, arguments={"video_url": "https://example.com/x.mp4", "prompt": "x"}
        )
        with pytest.raises(FalClientHTTPError) as caught:
            await handle.get()
        return caught.value

    assert "file_download_error" in run(scenario).response.text


def test_the_invalid_answer_fault_is_deterministic(emulator: EmulatorServer) -> None:
    emulator.configure(rate_bad_judge_output=1.0)

    async def scenario(c: fal_client.AsyncClient) -> str:
        url = await clip_url(c)
        return str(
            (
                await (
                    await c.submit(VIDEO_UNDERSTANDING, arguments={"video_url": url, "prompt": question(PROMPT)})
                ).get()
            )["output"]
        )

    text = run(scenario)
    with pytest.raises(Exception, match="prompt_adherence|no JSON"):
        VlmJudge().parse(text)
    assert emulator.stats()["faults"]["bad_judge_output"] == 1


def test_the_question_carries_the_prompt_and_a_schema_the_emulator_reads() -> None:
    text = question("A paper boat\non a pond")
    assert asked_prompt(text) == "A paper boat\non a pond"
    schema = asked_schema(text)
    assert schema["properties"]["prompt_adherence"] == {
        "type": "integer", "minimum": 1, "maximum": 5, "description": "How fully does the clip show what the prompt asks for?"
    }  # fmt: skip
    assert "explanation" in schema["required"]
