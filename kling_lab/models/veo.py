"""Google Veo 3 and Veo 3 Fast on fal (text-to-video), as fal's model pages give them.

Read from ``https://fal.ai/models/fal-ai/veo3/llms.txt`` and ``.../veo3/fast/llms.txt`` on 2026-12-01:
durations "4s" / "6s" / "8s" (default "8s"), aspect 16:9 or 9:16 (no 1:1), 720p or 1080p, a seed,
audio on by default. Veo 3: $0.20 per second, $0.40 with audio; Veo 3 Fast: $0.10, $0.15 with audio.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from kling_lab.models.base import Endpoint, Model
from kling_lab.models.inputs import FROM_SECONDS, STRICT, FreeText, Text
from kling_lab.models.pricing import PerSecond

READ_ON = "2026-12-01"
SIZES = {
    ("720p", "16:9"): (1280, 720),
    ("720p", "9:16"): (720, 1280),
    ("1080p", "16:9"): (1920, 1080),
    ("1080p", "9:16"): (1080, 1920),
}


class VeoTextToVideo(BaseModel):
    """``fal-ai/veo3`` and ``fal-ai/veo3/fast`` inputs."""

    model_config = STRICT

    prompt: Text = Field(min_length=1)
    aspect_ratio: Literal["16:9", "9:16"] = "16:9"
    duration: Annotated[Literal["4s", "6s", "8s"], FROM_SECONDS] = "8s"
    negative_prompt: FreeText | None = None
    resolution: Literal["720p", "1080p"] = "720p"
    generate_audio: bool = True
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    auto_fix: bool = True


def _veo(alias: str, name: str, endpoint_id: str, usd_per_s: str, with_audio: str) -> Model:
    return Model(
        alias=alias,
        name=name,
        family="veo",
        t2v=Endpoint(
            id=endpoint_id,
            schema=VeoTextToVideo,
            price=PerSecond(Decimal(usd_per_s), "generate_audio", {True: Decimal(with_audio)}),
            sizes=SIZES,
            source_url=f"https://fal.ai/models/{endpoint_id}/llms.txt",
            read_on=READ_ON,
            default_duration_s=8,
            default_resolution="720p",
        ),
        notes="audio is on by default (and doubles the price of Veo 3): set generate_audio: false to compare silent clips",
    )


def models() -> list[Model]:
    return [
        _veo("veo-3", "Veo 3", "fal-ai/veo3", "0.20", "0.40"),
        _veo("veo-3-fast", "Veo 3 Fast", "fal-ai/veo3/fast", "0.10", "0.15"),
    ]


__all__ = ["VeoTextToVideo", "models"]
