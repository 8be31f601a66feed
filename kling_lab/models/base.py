"""What a model is: its fal endpoints, each with an input schema, a price rule and output sizes.

A :class:`Model` is an alias (``kling-2.0-master``) with up to two :class:`Endpoint` s: text-to-video
and image-to-video. Everything else (the parameters a sweep may set, the capability flags) is
derived from the endpoints' pydantic schemas, so changing a model's schema or price is one edit
in its family module (``kling_lab/models/kling.py``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from kling_lab.errors import InvalidRequest
from kling_lab.models.pricing import PriceRule

IMAGE, END_IMAGE = "image", "end_image"  # what a sweep calls the start and end frames
CAPABILITIES = ("seed", "negative_prompt", "cfg_scale", "image", "end_frame", "audio")

Size = tuple[int, int]


@dataclass(frozen=True)
class Endpoint:
    """One fal endpoint: id, input schema, price rule, output sizes, and where its facts come from.

    ``sizes`` maps ``(resolution, aspect_ratio)`` to the output's width and height; models without a
    resolution input use ``""`` as the resolution. ``video_key`` is the path of the video URL in the
    result JSON; ``output_extra`` names the other top-level keys of the result (e.g. ``seed``).
    """

    id: str
    schema: type[BaseModel]
    price: PriceRule
    sizes: Mapping[tuple[str, str], Size]
    source_url: str
    read_on: str
    image_field: str | None = None  # image-to-video: the schema field holding the start frame's URL
    end_image_field: str | None = None  # the schema field holding the end frame's URL, if any
    default_duration_s: int = 5
    default_resolution: str = ""
    default_aspect: str = "16:9"
    video_key: tuple[str, ...] = ("video", "url")
    output_extra: tuple[str, ...] = ()
    max_prompt_chars: int | None = None

    @property
    def kind(self) -> str:
        return "image-to-video" if self.image_field else "text-to-video"

    @property
    def fields(self) -> list[str]:
        """The schema's input fields, in order."""
        return list(self.schema.model_fields)

    @property
    def image_fields(self) -> dict[str, str]:
        """Sweep name → schema field for the image inputs (``image`` → ``image_url``)."""
        found = {IMAGE: self.image_field, END_IMAGE: self.end_image_field}
        return {name: f for name, f in found.items() if f}

    def parameters(self) -> list[str]:
        """What a sweep may set for this endpoint: the schema fields, image fields under their sweep names."""
        renamed = {f: name for name, f in self.image_fields.items()}
        return [renamed.get(f, f) for f in self.fields]

    def cost(self, arguments: Mapping[str, Any]) -> Decimal | None:
        """What fal charges for ``arguments`` (a missing duration is this endpoint's default)."""
        return self.price.usd(arguments, self.default_duration_s)

    def output_size(self, arguments: Mapping[str, Any]) -> Size:
        """Width and height of the video fal returns for ``arguments``."""
        resolution = str(arguments.get("resolution", self.default_resolution))
        aspect = str(arguments.get("aspect_ratio", self.default_aspect))
        for key in ((resolution, aspect), (resolution, self.default_aspect), (self.default_resolution, aspect)):
            if key in self.sizes:
                return self.sizes[key]
        return next(iter(self.sizes.values()))

    def video_url(self, result: Any) -> str | None:
        """The video's URL in a result body (None when it is not there)."""
        node = result
        for key in self.video_key:
            node = node.get(key) if isinstance(node, Mapping) else None
        return node if isinstance(node, str) and node else None


@dataclass(frozen=True)
class Model:
    """A video model on fal, by alias, with its text-to-video and image-to-video endpoints."""

    alias: str
    name: str
    family: str
    t2v: Endpoint | None = None
    i2v: Endpoint | None = None
    notes: str = ""
    image_formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP")  # PIL format names the endpoints accept
    max_image_bytes: int = 10 * 1024**2
    min_image_side: int = 0
    audio: bool = field(default=False)  # produces sound even without a generate_audio input

    def __post_init__(self) -> None:
        if self.t2v is None and self.i2v is None:
            raise ValueError(f"model {self.alias!r} needs a text-to-video or an image-to-video endpoint")
        if self.i2v is not None and not self.i2v.image_field:
            raise ValueError(f"model {self.alias!r}: its image-to-video endpoint needs an image_field")

    @property
    def endpoints(self) -> list[Endpoint]:
        return [e for e in (self.t2v, self.i2v) if e is not None]

    def endpoint_for(self, *, image: bool) -> Endpoint:
        """The endpoint a request uses: image-to-video when an image is given."""
        if image:
            if self.i2v is None:
                raise InvalidRequest(f"{self.alias}: image: this model has no image-to-video endpoint", field=IMAGE)
            return self.i2v
        if self.t2v is None:
            raise InvalidRequest(
                f"{self.alias}: image: required (this model only has image-to-video: {self.i2v.id if self.i2v else ''})",
                field=IMAGE,
            )
        return self.t2v

    def parameters(self) -> list[str]:
        """Every input a sweep may set for this model (over both endpoints), plus ``model``."""
        seen: dict[str, None] = {"model": None}
        for endpoint in self.endpoints:
            seen.update(dict.fromkeys(endpoint.parameters()))
        return list(seen)

    @property
    def capabilities(self) -> frozenset[str]:
        """seed, negative_prompt, cfg_scale, image, end_frame, audio: derived from the schemas."""
        fields = {f for endpoint in self.endpoints for f in endpoint.fields}
        flags: set[str] = {name for name in ("seed", "negative_prompt", "cfg_scale") if name in fields}
        if self.i2v is not None:
            flags.add("image")
        if any(e.end_image_field for e in self.endpoints):
            flags.add("end_frame")
        if self.audio or "generate_audio" in fields:
            flags.add("audio")
        return frozenset(flags)

    def endpoint_by_id(self, endpoint_id: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.id == endpoint_id), None)


__all__ = ["CAPABILITIES", "END_IMAGE", "IMAGE", "Endpoint", "Model", "Size"]
