"""A weight-free signature of a video: what a few moments of it look like, and where they move.

The clip is decoded to grey at ``decode_side`` px on its long side (:func:`kling_lab.qc.read_luma`). At
``samples`` evenly spaced frames ``t`` the signature keeps

- the *look*: ``Y_t`` area-averaged to ``look_size`` (16×9 by default): layout and brightness, not texture;
- the *motion*: ``|Y_{t+1} − Y_t|`` taken at the decode size (so fine motion counts), then averaged
  to ``motion_size`` (8×4): how much each part of the picture moves.

Both are resized to the same grid whatever the clip's aspect. The distance of two clips is
``sqrt(½·mean((look_a − look_b)²) + ½·mean((motion_a − motion_b)²))`` in luma levels (0–255): the
look and the motion weigh the same although the look has more cells. The grids are coarse on
purpose: run-to-run differences of fine texture and exact positions (Kling has no seed) would
otherwise drown everything else. Nothing is learned: the distance sees pixels, not meaning.
Decoding dominates the cost (every frame is decoded, ≈ the time of :func:`kling_lab.qc.compute_qc`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from kling_lab.media.qc import read_luma

LOOK_SIZE = (16, 9)
MOTION_SIZE = (8, 4)


class Signature(NamedTuple):
    look: NDArray[np.float32]  # (samples, h, w) mean luma per cell
    motion: NDArray[np.float32]  # (samples, h, w) mean |frame difference| per cell


def frame_signature(
    path: str | os.PathLike[str],
    *,
    samples: int = 8,
    look_size: tuple[int, int] = LOOK_SIZE,
    motion_size: tuple[int, int] = MOTION_SIZE,
    decode_side: int = 128,
) -> Signature:
    """The signature of the video at ``path`` (see the module docstring); sizes are (width, height)."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    luma = read_luma(path, max_side=decode_side).astype(np.float32)
    if len(luma) < 2:
        luma = np.concatenate([luma, luma])  # a one-frame clip: no motion
    at = np.linspace(0, len(luma) - 2, samples).round().astype(int)
    look = np.stack([_resize(luma[t], look_size) for t in at])
    motion = np.stack([_resize(np.abs(luma[t + 1] - luma[t]), motion_size) for t in at])
    return Signature(look, motion)


def _resize(plane: NDArray[np.float32], size: tuple[int, int]) -> NDArray[np.float32]:
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))
    return np.asarray(image.resize(size, Image.Resampling.BOX), dtype=np.float32)


def signature_distances(paths: Iterable[str | os.PathLike[str]], **options: int) -> NDArray[np.float64]:
    """The symmetric matrix of signature distances (luma levels) between the videos at ``paths``."""
    signatures = [frame_signature(p, **options) for p in paths]  # type: ignore[arg-type]
    d2 = 0.5 * _mean_sq_diff([s.look for s in signatures]) + 0.5 * _mean_sq_diff([s.motion for s in signatures])
    return np.sqrt(d2)


def _mean_sq_diff(parts: list[NDArray[np.float32]]) -> NDArray[np.float64]:
    """Pairwise mean squared difference of equally shaped arrays."""
    flat = np.stack([p.ravel() for p in parts]).astype(np.float64)
    norms = (flat**2).sum(axis=1)
    d2 = np.maximum(norms[:, None] + norms[None, :] - 2.0 * flat @ flat.T, 0.0) / flat.shape[1]
    np.fill_diagonal(d2, 0.0)
    return d2


__all__ = ["LOOK_SIZE", "MOTION_SIZE", "Signature", "frame_signature", "signature_distances"]
