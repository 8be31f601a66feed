"""The Kling family on fal: schemas and prices as fal's model pages give them.

Read from fal's model pages (``https://fal.ai/models/<endpoint>/llms.txt``) on 2026-12-01. Kling 2.x
takes no seed: repeats are distinct requests. Text-to-video picks the aspect ratio; image-to-video
takes it from the image. ``kling-2.0-master`` text-to-video uses :class:`~kling_lab.request.KlingRequest`
itself, so its arguments and fingerprints are exactly those of earlier kling_lab versions.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from kling_lab.models.base import Endpoint, Model
from kling_lab.models.inputs import FROM_NUMBER, STRICT, FreeText, Number, Text
from kling_lab.models.pricing import PerClip, PerSecond, PriceRule, UserPrice
from kling_lab.request import DEFAULT_NEGATIVE_PROMPT, MAX_PROMPT_CHARS, OUTPUT_SIZES, KlingRequest

READ_ON = "2026-12-01"
PAGE = "https://fal.ai/models/{}/llms.txt"
SIZES_720P = {("", aspect): size for aspect, size in OUTPUT_SIZES.items()}  # 1280x720, 720x1280, 720x720
Duration = Annotated[Literal["5", "10"], FROM_NUMBER]


class KlingImageToVideo(BaseModel):
    """Kling 2.x image-to-video: the image sets the frame, so there is no aspect_ratio."""

    model_config = STRICT

    prompt: Text = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    image_url: str = Field(min_length=1)
    duration: Duration = "5"
    negative_prompt: FreeText = Field(DEFAULT_NEGATIVE_PROMPT, max_length=MAX_PROMPT_CHARS)
    cfg_scale: Number = Field(0.5, ge=0.0, le=1.0)


class KlingTextToVideo(BaseModel):
    """Kling 2.1+ text-to-video: the same five inputs as Kling 2.0 Master."""

    model_config = STRICT

    prompt: Text = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    duration: Duration = "5"
    aspect_ratio: Literal["16:9", "9:16", "1:1"] = "16:9"
    negative_prompt: FreeText = Field(DEFAULT_NEGATIVE_PROMPT, max_length=MAX_PROMPT_CHARS)
    cfg_scale: Number = Field(0.5, ge=0.0, le=1.0)


class KlingImageToVideoWithTail(KlingImageToVideo):
    """Kling 2.5 Turbo Pro image-to-video: also an end frame (``tail_image_url``)."""

    tail_image_url: str | None = None


class Kling26ImageToVideo(BaseModel):
    """Kling 2.6 Pro image-to-video: ``start_image_url`` and native audio."""

    model_config = STRICT

    prompt: Text = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    start_image_url: str = Field(min_length=1)
    duration: Duration = "5"
    negative_prompt: FreeText = Field(DEFAULT_NEGATIVE_PROMPT, max_length=MAX_PROMPT_CHARS)
    generate_audio: bool = True


def _endpoint(
    endpoint_id: str, schema: type[BaseModel], price: PriceRule, end_image_field: str | None = None
) -> Endpoint:
    fields = schema.model_fields
    image_field = next((f for f in ("image_url", "start_image_url") if f in fields), None)
    return Endpoint(
        id=endpoint_id,
        schema=schema,
        price=price,
        sizes=SIZES_720P,
        source_url=PAGE.format(endpoint_id),
        read_on=READ_ON,
        image_field=image_field,
        end_image_field=end_image_field,
        max_prompt_chars=MAX_PROMPT_CHARS,
    )


def _kling(alias: str, name: str, t2v: Endpoint | None, i2v: Endpoint | None, notes: str = "") -> Model:
    return Model(
        alias=alias,
        name=name,
        family="kling",
        t2v=t2v,
        i2v=i2v,
        notes=notes,
        image_formats=("JPEG", "PNG", "WEBP", "GIF"),
    )


MASTER = PerClip(Decimal("1.40"), 5, Decimal("0.28"))


def models() -> list[Model]:
    return [
        _kling(
            "kling-2.0-master",
            "Kling 2.0 Master",
            _endpoint("fal-ai/kling-video/v2/master/text-to-video", KlingRequest, MASTER),
            _endpoint(
                "fal-ai/kling-video/v2/master/image-to-video",
                KlingImageToVideo,
                UserPrice("fal's image-to-video page showed no price when read"),
            ),
            notes="the default model; image-to-video takes its price from you (prices: in the sweep)",
        ),
        _kling(
            "kling-2.1-master",
            "Kling 2.1 Master",
            _endpoint("fal-ai/kling-video/v2.1/master/text-to-video", KlingTextToVideo, MASTER),
            _endpoint("fal-ai/kling-video/v2.1/master/image-to-video", KlingImageToVideo, MASTER),
        ),
        _kling(
            "kling-2.1-pro",
            "Kling 2.1 Pro",
            None,
            _endpoint(
                "fal-ai/kling-video/v2.1/pro/image-to-video",
                KlingImageToVideo,
                PerClip(Decimal("0.49"), 5, Decimal("0.098")),
            ),
        ),
        _kling(
            "kling-2.1-standard",
            "Kling 2.1 Standard",
            None,
            _endpoint(
                "fal-ai/kling-video/v2.1/standard/image-to-video",
                KlingImageToVideo,
                PerClip(Decimal("0.28"), 5, Decimal("0.056")),
            ),
        ),
        _kling(
            "kling-2.5-turbo-pro",
            "Kling 2.5 Turbo Pro",
            _endpoint(
                "fal-ai/kling-video/v2.5-turbo/pro/text-to-video",
                KlingTextToVideo,
                PerClip(Decimal("0.35"), 5, Decimal("0.07")),
            ),
            _endpoint(
                "fal-ai/kling-video/v2.5-turbo/pro/image-to-video",
                KlingImageToVideoWithTail,
                PerClip(Decimal("0.35"), 5, Decimal("0.07")),
                end_image_field="tail_image_url",
            ),
        ),
        _kling(
            "kling-2.5-turbo-standard",
            "Kling 2.5 Turbo Standard",
            None,
            _endpoint(
                "fal-ai/kling-video/v2.5-turbo/standard/image-to-video",
                KlingImageToVideo,
                PerClip(Decimal("0.21"), 5, Decimal("0.042")),
            ),
        ),
        _kling(
            "kling-2.6-pro",
            "Kling 2.6 Pro",
            None,
            _endpoint(
                "fal-ai/kling-video/v2.6/pro/image-to-video",
                Kling26ImageToVideo,
                PerSecond(Decimal("0.07"), "generate_audio", {True: Decimal("0.14")}),
            ),
            notes="inputs as far as fal's page was read (voice_ids not modelled)",
        ),
    ]


__all__ = ["KlingImageToVideo", "KlingImageToVideoWithTail", "KlingTextToVideo", "models"]
