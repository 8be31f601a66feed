"""One validated request to a model: its endpoint, canonical arguments, images, price and fingerprint.

Pure: a local image arrives already read (an :class:`ImageRef` with its sha256, from
:func:`kling_lab.util.images.image_ref`); until it is uploaded, the image field of the arguments
holds ``"sha256:<hex>"``, which is also what the fingerprint hashes, so the same picture gives the
same fingerprint wherever it lives and whatever URL fal storage gave it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError

from kling_lab.errors import InvalidRequest
from kling_lab.models.base import END_IMAGE, IMAGE, Endpoint, Model, Size
from kling_lab.models.inputs import one_line
from kling_lab.models.pricing import PriceRule, seconds_of
from kling_lab.util.text import canonical_json

URL_PREFIXES = ("https://", "http://", "data:")
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def is_url(text: str) -> bool:
    return text.startswith(URL_PREFIXES)


@dataclass(frozen=True)
class ImageRef:
    """A start or end frame: a URL as given, or a local file read once (sha256, size, pixels, format)."""

    source: str  # the path or URL the sweep gave
    sha256: str | None = None  # set for local files
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None  # PIL's name: PNG, JPEG, ...

    @property
    def is_local(self) -> bool:
        return self.sha256 is not None

    @property
    def key(self) -> str:
        """What the arguments hold until upload, and what the fingerprint hashes."""
        return f"sha256:{self.sha256}" if self.sha256 else self.source

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.format or "", "application/octet-stream")


@dataclass(frozen=True, eq=False)
class ModelRequest:
    """A request ready to submit (after its local images are uploaded): read inputs as attributes."""

    model: Model
    endpoint: Endpoint
    input: BaseModel
    images: Mapping[str, ImageRef] = field(default_factory=dict)  # sweep name (image, end_image) -> ref
    price_rule: PriceRule | None = None  # the user's price, else the endpoint's

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.input, name)

    def __repr__(self) -> str:
        return f"ModelRequest({self.alias}, {self.endpoint.id}, {self.arguments()!r})"

    @property
    def alias(self) -> str:
        return self.model.alias

    @property
    def endpoint_id(self) -> str:
        return self.endpoint.id

    def value(self, name: str, default: Any = None) -> Any:
        """An input by its schema name (``default`` when the endpoint has no such input)."""
        return self.arguments().get(name, default)

    # -- what is sent ------------------------------------------------------------------------
    def arguments(self) -> dict[str, Any]:
        """The canonical input (defaults filled in; local images as ``sha256:<hex>``)."""
        return self.input.model_dump(mode="json", exclude_none=True)

    def local_images(self) -> dict[str, ImageRef]:
        """Schema field → image that must be uploaded to fal storage before submitting."""
        return {self.endpoint.image_fields[n]: ref for n, ref in self.images.items() if ref.is_local}

    def sent_arguments(self, urls: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The exact input sent: ``urls`` (schema field → fal storage URL) replace the local images."""
        arguments = self.arguments()
        missing = set(self.local_images()) - set(urls or {})
        if missing:
            raise ValueError(f"local images not uploaded yet: {sorted(missing)}")
        arguments.update(urls or {})
        return arguments

    # -- facts ---------------------------------------------------------------------------------
    def fingerprint(self, repeat: int = 0) -> str:
        """sha256 of endpoint + canonical input + repeat index (32 hex chars), as ``KlingRequest`` has it."""
        canonical = canonical_json({"endpoint": self.endpoint.id, "input": self.arguments(), "repeat": int(repeat)})
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]

    @property
    def rule(self) -> PriceRule:
        return self.price_rule or self.endpoint.price

    def cost(self) -> Decimal | None:
        """What fal charges when it succeeds; None when the price is not known."""
        return self.rule.usd(self.arguments(), self.endpoint.default_duration_s)

    def cost_usd(self) -> float | None:
        cost = self.cost()
        return None if cost is None else float(cost)

    @property
    def duration_s(self) -> int:
        return seconds_of(self.arguments(), self.endpoint.default_duration_s)

    @property
    def output_size(self) -> Size:
        return self.endpoint.output_size(self.arguments())

    def columns(self) -> dict[str, Any]:
        """The run-log columns this request fills (inputs the model lacks are None)."""
        args = self.arguments()
        image, end = self.images.get(IMAGE), self.images.get(END_IMAGE)
        return {
            "model": self.alias,
            "prompt": args.get("prompt"),
            "negative_prompt": args.get("negative_prompt"),
            "cfg_scale": args.get("cfg_scale"),
            "aspect_ratio": args.get("aspect_ratio"),
            "duration_s": self.duration_s,
            "seed": args.get("seed"),
            "resolution": args.get("resolution"),
            "generate_audio": args.get("generate_audio"),
            "image_sha256": image.sha256 if image else None,
            "end_image_sha256": end.sha256 if end else None,
        }


def parse_request(
    model: Model,
    inputs: Mapping[str, Any],
    *,
    images: Mapping[str, ImageRef] | None = None,
    price_rule: PriceRule | None = None,
) -> ModelRequest:
    """Validate ``inputs`` (sweep names: ``image``/``end_image``, no ``model``) for ``model``.

    Raises :class:`InvalidRequest` with one line naming the model, the input and what is allowed:
    an input the chosen endpoint does not take is an error, never silently dropped.
    """
    images = dict(images or {})
    endpoint = model.endpoint_for(image=IMAGE in images)
    names = endpoint.parameters()
    for key in inputs:
        if key in (IMAGE, END_IMAGE):
            raise InvalidRequest(f"{model.alias}: {key}: give it as an ImageRef (Sweep reads local files)", field=key)
        if key not in names:
            raise InvalidRequest(_not_taken(model, endpoint, key), field=key)
    if END_IMAGE in images and END_IMAGE not in endpoint.image_fields:
        raise InvalidRequest(_not_taken(model, endpoint, END_IMAGE), field=END_IMAGE)
    for name, ref in images.items():
        check_image(model, name, ref)
    data = dict(inputs)
    renamed = {}
    for name, ref in images.items():
        schema_field = endpoint.image_fields[name]
        data[schema_field] = ref.key
        renamed[schema_field] = name
    try:
        value = endpoint.schema.model_validate(data)
    except ValidationError as exc:
        raise one_line(exc, alias=model.alias, schema=endpoint.schema, data=data, renamed=renamed) from None
    return ModelRequest(model, endpoint, value, images, price_rule)


def _not_taken(model: Model, endpoint: Endpoint, key: str) -> str:
    hint = ""
    if key in endpoint.fields and key in endpoint.image_fields.values():
        hint = " (give the picture as image: / end_image:, a local path or a URL)"
    elif key == IMAGE or key in (f for e in model.endpoints for f in e.parameters()):
        other = "image-to-video" if endpoint.kind == "text-to-video" else "text-to-video"
        hint = f" (only its {other} endpoint does)"
    return (
        f"{model.alias}: {key}: not an input of {endpoint.id}{hint}; "
        f"it takes: {', '.join(endpoint.parameters())}; to set it for some models only, use models: {{alias: {{...}}}}"
    )


def check_image(model: Model, name: str, ref: ImageRef) -> None:
    """A local image the model cannot take (format, size, pixels) is an input error before any upload."""
    if not ref.is_local:
        return
    if ref.format not in model.image_formats:
        formats = ", ".join(model.image_formats)
        raise InvalidRequest(
            f"{model.alias}: {name}: {ref.source} is {ref.format}; must be one of {formats}", field=name
        )
    if ref.bytes is not None and ref.bytes > model.max_image_bytes:
        raise InvalidRequest(
            f"{model.alias}: {name}: {ref.source} has {ref.bytes} bytes, more than the {model.max_image_bytes} "
            "this model accepts",
            field=name,
        )
    side = min(ref.width or 0, ref.height or 0)
    if model.min_image_side and side < model.min_image_side:
        raise InvalidRequest(
            f"{model.alias}: {name}: {ref.source} is {ref.width}x{ref.height}; each side must be at least "
            f"{model.min_image_side} px",
            field=name,
        )


__all__ = ["ImageRef", "ModelRequest", "check_image", "is_url", "parse_request"]
