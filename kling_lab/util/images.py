"""Reading a local image once: its sha256, size, pixels and format (for image-to-video inputs)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


class NotAnImage(ValueError):
    """The file is missing or is not an image PIL can read."""


@dataclass(frozen=True)
class ImageFile:
    sha256: str
    bytes: int
    width: int
    height: int
    format: str  # PIL's name: PNG, JPEG, WEBP, ...


def read_image(path: str | os.PathLike[str]) -> ImageFile:
    """The facts of a local image; raises :class:`NotAnImage` (missing, unreadable, not an image)."""
    from PIL import Image, UnidentifiedImageError

    file = Path(path).expanduser()
    if not file.is_file():
        raise NotAnImage(f"no such image file: {path}")
    data = file.read_bytes()
    try:
        with Image.open(file) as image:
            image.verify()
            width, height, kind = image.width, image.height, image.format or "unknown"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise NotAnImage(f"{path} is not an image ({type(exc).__name__})") from None
    return ImageFile(hashlib.sha256(data).hexdigest(), len(data), width, height, kind)


__all__ = ["ImageFile", "NotAnImage", "read_image"]
