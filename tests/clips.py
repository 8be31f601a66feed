"""Synthetic H.264 clips with known properties, rendered with PyAV for the media tests.

Each ``*_frames`` function yields grey ``(H, W)`` uint8 frames; ``write_clip`` encodes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

W, H, FPS = 320, 180, 24
Frame = NDArray[np.uint8]


def write_clip(path: Path, frames: Iterable[Frame], *, fps: int = FPS, crf: int = 18, gop: int | None = None) -> Path:
    """Encode grey or RGB uint8 frames to an H.264 (yuv420p, libx264 ultrafast) mp4 at ``path``."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "ultrafast"}
        if gop is not None:
            stream.options = {**stream.options, "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        for i, frame in enumerate(frames):
            if i == 0:
                stream.height, stream.width = frame.shape[:2]
            fmt = "gray" if frame.ndim == 2 else "rgb24"
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=fmt)))
        container.mux(stream.encode(None))
    return path


def texture(seed: int, *, w: int = W, h: int = H, lo: int = 40, hi: int = 215, cell: int = 8) -> Frame:
    """A blocky random texture (sharp edges) with values in ``[lo, hi)``."""
    rng = np.random.default_rng(seed)
    small = rng.integers(lo, hi, (h // cell + 1, w // cell + 1), dtype=np.uint8)
    return np.kron(small, np.ones((cell, cell), dtype=np.uint8))[:h, :w]


def static_frames(n: int = 48, seed: int = 1) -> Iterator[Frame]:
    """The same textured frame ``n`` times."""
    frame = texture(seed)
    for _ in range(n):
        yield frame


def moving_frames(n: int = 72, speed: int = 3, seed: int = 2) -> Iterator[Frame]:
    """A texture panning ``speed`` px per frame plus a bright disc crossing the frame: smooth motion, no cut."""
    wide = texture(seed, w=W + n * speed)
    yy, xx = np.mgrid[0:H, 0:W]
    for i in range(n):
        frame = wide[:, i * speed : i * speed + W].copy()
        cx = 20 + (W - 40) * i / max(1, n - 1)
        frame[(xx - cx) ** 2 + (yy - H / 2) ** 2 < 25**2] = 250
        yield frame


def cut_frames(n_cuts: int, per_scene: int = 24) -> Iterator[Frame]:
    """``n_cuts + 1`` scenes of ``per_scene`` frames each, with different brightness ranges, each moving slowly."""
    ranges = [(10, 90), (150, 250), (60, 140), (120, 200)]
    for scene in range(n_cuts + 1):
        lo, hi = ranges[scene % len(ranges)]
        wide = texture(10 + scene, w=W + 2 * per_scene, lo=lo, hi=hi)
        for i in range(per_scene):
            yield wide[:, 2 * i : 2 * i + W]


def black_frames(n: int = 48) -> Iterator[Frame]:
    """All-black frames."""
    frame = np.zeros((H, W), dtype=np.uint8)
    for _ in range(n):
        yield frame


def blurred(frames: Iterable[Frame], radius: float = 3.0) -> Iterator[Frame]:
    """The same frames after a Gaussian blur of ``radius`` px."""
    for frame in frames:
        yield np.asarray(Image.fromarray(frame).filter(ImageFilter.GaussianBlur(radius)))


def flicker_frames(n: int = 48, amplitude: int = 30, seed: int = 3) -> Iterator[Frame]:
    """A static texture whose brightness alternates by ``±amplitude/2`` every frame (``amplitude=0``: steady)."""
    base = texture(seed, lo=60, hi=190).astype(np.int16)
    for i in range(n):
        yield np.clip(base + (amplitude // 2 if i % 2 else -(amplitude // 2)), 0, 255).astype(np.uint8)


def fade_frames(n: int = 48, top: int = 200) -> Iterator[Frame]:
    """A flat grey frame fading linearly from black to ``top``."""
    for i in range(n):
        yield np.full((H, W), round(top * i / (n - 1)), dtype=np.uint8)


def ramp_frames(n: int = 48) -> Iterator[Frame]:
    """Flat frames whose brightness encodes the frame index: ``10 + 5 * i`` (so a tile's mean tells its index)."""
    for i in range(n):
        yield np.full((H, W), 10 + 5 * i, dtype=np.uint8)
