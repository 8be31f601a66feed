"""How sweep inputs expand into requests: grid products, zip rows, local images read once, user prices."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kling_lab.errors import InvalidRequest, SweepFileError
from kling_lab.models import ImageRef, ModelRequest, get_model
from kling_lab.models.pricing import PriceRule, user_price
from kling_lab.models.request import is_url
from kling_lab.util.images import NotAnImage, read_image


def as_inputs(request: ModelRequest) -> dict[str, Any]:
    """A request back as sweep inputs (its model, its arguments, its images under their sweep names)."""
    inputs = {"model": request.alias, **request.arguments()}
    for name, schema_field in request.endpoint.image_fields.items():
        inputs.pop(schema_field, None)
        if name in request.images:
            inputs[name] = request.images[name]
    return inputs


def price_rules(prices: Mapping[str, Mapping[str, float]]) -> dict[str, PriceRule]:
    rules = {}
    for alias, spec in prices.items():
        model = get_model(alias)
        try:
            rules[model.alias] = user_price(spec)
        except (ValueError, ArithmeticError) as exc:
            raise SweepFileError(f"prices.{alias}: {exc}") from None
    return rules


class ImageReader:
    """Local images read once per sweep (sha256, size, pixels); URLs passed through."""

    def __init__(self, base_dir: Path | None) -> None:
        self.base_dir = base_dir
        self._seen: dict[str, ImageRef] = {}

    def ref(self, value: Any, key: str) -> ImageRef | None:
        if value is None:
            return None
        if isinstance(value, ImageRef):
            return value
        if not isinstance(value, (str, Path)) or not str(value).strip():
            raise InvalidRequest(f"{key}: must be a local image file or an https:// URL; got {value!r}", field=key)
        text = str(value)
        if is_url(text):
            return ImageRef(source=text)
        path = Path(text).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        if text not in self._seen:
            try:
                facts = read_image(path)
            except NotAnImage as exc:
                raise InvalidRequest(f"{key}: {exc}", field=key) from None
            self._seen[text] = ImageRef(
                source=str(path),
                sha256=facts.sha256,
                bytes=facts.bytes,
                width=facts.width,
                height=facts.height,
                format=facts.format,
            )
        return self._seen[text]


def check_axes(label: str, axes: Mapping[str, Sequence[Any]] | None) -> None:
    for key, values in (axes or {}).items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise SweepFileError(f"{label}.{key}: must be a non-empty list of values")


def product(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]


def zip_rows(columns: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    if not columns:
        return [{}]
    lengths = {key: len(values) for key, values in columns.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise SweepFileError(f"zip: lists must have the same length; got {desc}")
    keys = list(columns)
    return [dict(zip(keys, row)) for row in zip(*(columns[k] for k in keys))]


__all__ = ["ImageReader", "as_inputs", "check_axes", "price_rules", "product", "zip_rows"]
