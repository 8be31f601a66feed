"""MiniMax Hailuo on fal, as fal's model pages give them.

Read on 2026-12-01 from ``https://fal.ai/models/<endpoint>/llms.txt``:

- Hailuo 2.3 Standard text-to-video (768p): "6" or "10" seconds, $0.28 per 6 s and $0.56 per 10 s clip;
- Hailuo 02 Standard image-to-video: $0.045 per second at 768P, about $0.017 at 512P, an end frame.
  Its text-to-video page showed no price when read: that endpoint takes its price from you.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from kling_lab.models.base import Endpoint, Model
from kling_lab.models.inputs import FROM_NUMBER, STRICT, Text
from kling_lab.models.pricing import ByDuration, PerSecond, PriceRule, UserPrice

READ_ON = "2026-12-01"
SIZES = {("", "16:9"): (1366, 768), ("768P", "16:9"): (1366, 768), ("512P", "16:9"): (910, 512)}
Duration = Annotated[Literal["6", "10"], FROM_NUMBER]


class HailuoTextToVideo(BaseModel):
    model_config = STRICT

    prompt: Text = Field(min_length=1)
    prompt_optimizer: bool = True
    duration: Duration = "6"


class Hailuo02ImageToVideo(BaseModel):
    model_config = STRICT

    prompt: Text = Field(min_length=1)
    image_url: str = Field(min_length=1)
    duration: Duration = "6"
    prompt_optimizer: bool = True
    resolution: Literal["512P", "768P"] = "768P"
    end_image_url: str | None = None


def _endpoint(
    endpoint_id: str,
    schema: type[BaseModel],
    price: PriceRule,
    image_field: str | None = None,
    end_image_field: str | None = None,
    default_resolution: str = "",
) -> Endpoint:
    return Endpoint(
        id=endpoint_id,
        schema=schema,
        price=price,
        sizes=SIZES,
        source_url=f"https://fal.ai/models/{endpoint_id}/llms.txt",
        read_on=READ_ON,
        default_duration_s=6,
        image_field=image_field,
        end_image_field=end_image_field,
        default_resolution=default_resolution,
    )


def models() -> list[Model]:
    return [
        Model(
            alias="hailuo-2.3-standard",
            name="MiniMax Hailuo 2.3 Standard",
            family="hailuo",
            t2v=_endpoint(
                "fal-ai/minimax/hailuo-2.3/standard/text-to-video",
                HailuoTextToVideo,
                ByDuration({6: Decimal("0.28"), 10: Decimal("0.56")}),
            ),
            notes="768p, no aspect ratio, negative prompt or seed",
        ),
        Model(
            alias="hailuo-02-standard",
            name="MiniMax Hailuo 02 Standard",
            family="hailuo",
            t2v=_endpoint(
                "fal-ai/minimax/hailuo-02/standard/text-to-video",
                HailuoTextToVideo,
                UserPrice("fal's text-to-video page showed no price when read"),
            ),
            i2v=_endpoint(
                "fal-ai/minimax/hailuo-02/standard/image-to-video",
                Hailuo02ImageToVideo,
                PerSecond(Decimal("0.045"), "resolution", {"512P": Decimal("0.017")}),
                image_field="image_url",
                end_image_field="end_image_url",
                default_resolution="768P",
            ),
            notes="text-to-video takes its price from you (prices: in the sweep)",
        ),
    ]


__all__ = ["Hailuo02ImageToVideo", "HailuoTextToVideo", "models"]
