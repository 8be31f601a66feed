"""ByteDance Seedance 1.0 Pro Fast on fal (text- and image-to-video), as fal's model pages give them.

Read from ``https://fal.ai/models/fal-ai/bytedance/seedance/v1/pro/fast/{text,image}-to-video/llms.txt``
on 2026-12-01: $1 per million video tokens, tokens = height × width × FPS × duration / 1024 (a 1080p
5 s clip ≈ $0.243), durations "2"–"12", 480p/720p/1080p, six aspect ratios, a seed (-1: random).
The pages give the 16:9 sizes only; other aspect ratios are taken at the same pixel count, so their
price estimates are approximate (``kling-lab models`` says so).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from kling_lab.models.base import Endpoint, Model, Size
from kling_lab.models.inputs import FROM_NUMBER, STRICT, Text
from kling_lab.models.pricing import PerVideoTokens

READ_ON = "2026-12-01"
FPS = 24
ASPECTS = ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")
WIDE = {"480p": (864, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
Aspect = Literal["21:9", "16:9", "4:3", "1:1", "3:4", "9:16"]
Duration = Annotated[Literal["2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"], FROM_NUMBER]


def _size(resolution: str, aspect: str) -> Size:
    """The 16:9 size from fal's page; other ratios at the same pixel count (even sides)."""
    width, height = WIDE[resolution]
    if aspect == "16:9":
        return width, height
    a, b = (int(x) for x in aspect.split(":"))
    area = width * height
    return round(math.sqrt(area * a / b) / 2) * 2, round(math.sqrt(area * b / a) / 2) * 2


SIZES = {(r, a): _size(r, a) for r in WIDE for a in ASPECTS}


class SeedanceTextToVideo(BaseModel):
    model_config = STRICT

    prompt: Text = Field(min_length=1)
    aspect_ratio: Aspect = "16:9"
    resolution: Literal["480p", "720p", "1080p"] = "1080p"
    duration: Duration = "5"
    camera_fixed: bool = False
    seed: int | None = Field(None, ge=-1, le=2**32 - 1)
    enable_safety_checker: bool = True


class SeedanceImageToVideo(BaseModel):
    model_config = STRICT

    prompt: Text = Field(min_length=1)
    image_url: str = Field(min_length=1)
    aspect_ratio: Literal["21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "auto"] = "auto"
    resolution: Literal["480p", "720p", "1080p"] = "1080p"
    duration: Duration = "5"
    camera_fixed: bool = False
    seed: int | None = Field(None, ge=-1, le=2**32 - 1)
    enable_safety_checker: bool = True


PRICE = PerVideoTokens(Decimal("1.0"), FPS, SIZES, default_resolution="1080p")


def _endpoint(kind: str, schema: type[BaseModel], image_field: str | None = None) -> Endpoint:
    endpoint_id = f"fal-ai/bytedance/seedance/v1/pro/fast/{kind}"
    return Endpoint(
        id=endpoint_id,
        schema=schema,
        price=PRICE,
        sizes=SIZES,
        source_url=f"https://fal.ai/models/{endpoint_id}/llms.txt",
        read_on=READ_ON,
        image_field=image_field,
        default_resolution="1080p",
        output_extra=("seed",),
    )


def models() -> list[Model]:
    return [
        Model(
            alias="seedance-1-pro-fast",
            name="Seedance 1.0 Pro Fast",
            family="seedance",
            t2v=_endpoint("text-to-video", SeedanceTextToVideo),
            i2v=_endpoint("image-to-video", SeedanceImageToVideo, "image_url"),
            notes="priced by video tokens: 16:9 exact; other aspect ratios estimated at the same pixel count",
        )
    ]


__all__ = ["SeedanceImageToVideo", "SeedanceTextToVideo", "models"]
