"""The emulator's placeholder video: a real H.264 mp4 with a banner and a clip code (or the parameters).

The picture is a soft checkerboard drifting diagonally. ``cfg_scale`` sets its speed,
``(20 + 300·cfg_scale) px/s`` at 720p, times ``1 ± 5 %`` of per-request jitter from
``variation_seed`` (the repeat-to-repeat noise: about 2 % SD of ``qc_motion``); the prompt sets
its colours. Each word of the negative prompt that
names motion (:data:`MOTION_WORDS`, e.g. "fast motion, shaky") slows the drift by 1 %, as asking a
model to avoid fast motion would: a small, deterministic effect that races and effect tests can
find. Other negative prompts change neither motion nor texture statistics. The static text panel
shows a neutral clip code (blind, the default: A/B votes stay blind) or the parameters
(``EmulatorConfig(blind=False)``). Frames are generated straight in
YUV 4:2:0 from separable 1-D waves, which keeps a 5 s 720p clip well under 2 s.
"""

from __future__ import annotations

import colorsys
import hashlib
import os
import re
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kling_lab.request import OUTPUT_SIZES

BANNER = "EMULATOR - placeholder, not Kling output"
REFERENCE_SHORT_SIDE = 720  # Kling 2.0 Master's 720p
BASE_SPEED_PX_S = 20.0  # drift speed at cfg_scale 0, in 720p pixels per second
CFG_SPEED_PX_S = 300.0  # extra speed per unit of cfg_scale
PERIOD_PX = 128.0  # checker period at 720p
SPEED_JITTER = 0.05
MOTION_WORDS = ("motion", "movement", "fast", "shaky", "jitter")  # in a negative prompt: slower drift
MOTION_WORD_SLOWDOWN = 0.01  # per motion word, at most MAX_MOTION_WORDS of them
MAX_MOTION_WORDS = 10
DIRECTION_RAD = np.deg2rad(20.0)
EDGE_SHARPNESS = 3.0

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class _Plate:
    """An opaque text panel, already in YUV 4:2:0, pasted at rows ``top:top+h``."""

    top: int
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray


def render_placeholder(
    path: str | os.PathLike[str],
    *,
    prompt: str,
    negative_prompt: str,
    cfg_scale: float,
    aspect_ratio: str,
    duration_s: int,
    width: int,
    height: int,
    fps: int,
    variation_seed: int,
    blind: bool = True,
    comment: str | None = None,
) -> None:
    """Write an mp4 (libx264, yuv420p, faststart) of ``duration_s * fps`` frames at ``width``×``height``.

    ``blind``: the text panel shows a neutral clip code instead of the parameters (see ``caption_lines``).
    ``comment`` goes into the file's ``comment`` metadata tag (the emulator records there what it drew)."""
    if width % 2 or height % 2 or width < 16 or height < 16:
        raise ValueError(f"width and height must be even and at least 16, got {width}x{height}")
    scale = min(width, height) / REFERENCE_SHORT_SIDE
    rng = np.random.default_rng(variation_seed)
    phase_x, phase_y = rng.uniform(0.0, 2 * np.pi, size=2)
    speed = (BASE_SPEED_PX_S + CFG_SPEED_PX_S * cfg_scale) * scale * motion_factor(negative_prompt)
    speed *= 1.0 + rng.uniform(-SPEED_JITTER, SPEED_JITTER)
    vx, vy = speed * np.cos(DIRECTION_RAD), speed * np.sin(DIRECTION_RAD)
    k = 2 * np.pi / (PERIOD_PX * scale)

    light, dark = _prompt_colours(prompt)
    base = (light + dark) / 2  # YUV of the mid tone
    amp = (light - dark) / 2
    lines = caption_lines(
        prompt=prompt,
        negative_prompt=negative_prompt,
        cfg_scale=cfg_scale,
        aspect_ratio=aspect_ratio,
        duration_s=duration_s,
        width=width,
        height=height,
        variation_seed=variation_seed,
        blind=blind,
    )
    plates = _text_plates(width, height, lines=lines)

    xs = np.arange(width, dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)
    n_frames = round(duration_s * fps)
    buffer = np.empty((height * 3 // 2, width), dtype=np.uint8)
    flat = buffer.reshape(-1)
    plane_y = flat[: width * height].reshape(height, width)
    plane_u = flat[width * height : width * height * 5 // 4].reshape(height // 2, width // 2)
    plane_v = flat[width * height * 5 // 4 :].reshape(height // 2, width // 2)
    work = np.empty((height, width), dtype=np.float32)
    work_c = np.empty((height // 2, width // 2), dtype=np.float32)

    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        if comment is not None:
            container.metadata["comment"] = comment
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"preset": "ultrafast", "crf": "26"}
        for i in range(n_frames):
            t = i / fps
            wave_x = _square_wave(k * (xs - vx * t) + phase_x)
            wave_y = _square_wave(k * (ys - vy * t) + phase_y)
            _fill(plane_y, work, wave_y, wave_x, base[0], amp[0])
            _fill(plane_u, work_c, wave_y[::2], wave_x[::2], base[1], amp[1])
            _fill(plane_v, work_c, wave_y[::2], wave_x[::2], base[2], amp[2])
            for plate in plates:
                _paste(plate, plane_y, plane_u, plane_v)
            frame = av.VideoFrame.from_ndarray(buffer, format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def motion_factor(negative_prompt: str) -> float:
    """How much the negative prompt slows the drift: 1 % less per motion word (see :data:`MOTION_WORDS`)."""
    words = re.findall(r"[a-z]+", negative_prompt.lower())
    named = sum(word in MOTION_WORDS for word in words)
    return 1.0 - MOTION_WORD_SLOWDOWN * min(named, MAX_MOTION_WORDS)


def caption_lines(
    *,
    prompt: str,
    negative_prompt: str,
    cfg_scale: float,
    aspect_ratio: str,
    duration_s: int,
    width: int,
    height: int,
    variation_seed: int,
    blind: bool = True,
) -> list[str]:
    """The text burned into the placeholder under the banner.

    Blind: only a neutral code (from the per-job ``variation_seed``) with the duration and size, which
    every arm of an A/B pair shares, so a vote on ``negative_prompt`` or ``cfg_scale`` stays blind.
    Not blind: the prompt, ``cfg_scale`` and the negative prompt, to check a grid's layout by eye.
    """
    if blind:
        code = f"{variation_seed & 0xFFFF_FFFF_FFFF:012X}"
        return [f"clip {code[:4]}-{code[4:8]}-{code[8:]}  ·  {duration_s} s  ·  {width}x{height}"]
    return [
        f"prompt: {prompt}",
        f"cfg_scale {cfg_scale:.2f}  ·  {aspect_ratio}  ·  {duration_s} s  ·  {width}x{height}",
        f"negative: {negative_prompt}",
    ]


def _square_wave(phase: np.ndarray) -> np.ndarray:
    """A sine with soft square edges, in [-1, 1] (1-D, so cheap)."""
    return (np.tanh(EDGE_SHARPNESS * np.sin(phase)) / np.tanh(EDGE_SHARPNESS)).astype(np.float32)


def _fill(plane: np.ndarray, work: np.ndarray, rows: np.ndarray, cols: np.ndarray, base: float, amp: float) -> None:
    """plane = base + amp * outer(rows, cols), vectorised, into a uint8 plane."""
    np.multiply.outer(rows * np.float32(amp), cols, out=work)
    work += np.float32(base + 0.5)
    np.clip(work, 0, 255, out=work)
    plane[...] = work  # float -> uint8 (truncation of +0.5 rounds)


def _paste(plate: _Plate, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    h = plate.y.shape[0]
    y[plate.top : plate.top + h] = plate.y
    u[plate.top // 2 : (plate.top + h) // 2] = plate.u
    v[plate.top // 2 : (plate.top + h) // 2] = plate.v


def _prompt_colours(prompt: str) -> tuple[np.ndarray, np.ndarray]:
    """A light and a dark YUV colour whose hue comes from the prompt text."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536
    light = colorsys.hsv_to_rgb(hue, 0.55, 0.95)
    dark = colorsys.hsv_to_rgb((hue + 0.08) % 1.0, 0.8, 0.3)
    return _rgb_to_yuv(np.array(light) * 255), _rgb_to_yuv(np.array(dark) * 255)


def _rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    """BT.601 limited range, the default H.264 decoders assume. Works on (..., 3) arrays."""
    matrix = np.array([[0.257, 0.504, 0.098], [-0.148, -0.291, 0.439], [0.439, -0.368, -0.071]], dtype=np.float32)
    return rgb.astype(np.float32) @ matrix.T + np.array([16.0, 128.0, 128.0], dtype=np.float32)


def _text_plates(width: int, height: int, *, lines: list[str]) -> list[_Plate]:
    """Render the banner (top) and the parameter lines (bottom) once, as YUV panels."""
    size = max(8, round(min(width, height) * 0.034))
    font = ImageFont.load_default(size=size)
    banner = _panel(width, [BANNER], font, size, fg=(255, 255, 255), bg=(170, 20, 30))
    info = _panel(width, lines, font, size, fg=(240, 240, 240), bg=(16, 16, 16))
    info_top = max(banner.shape[0], (height - info.shape[0]) // 2 * 2)
    plates = [_to_plate(banner, top=0), _to_plate(info[: height - info_top], top=info_top)]
    return [p for p in plates if p.y.shape[0] > 0]


def _panel(width: int, lines: list[str], font: Font, size: int, *, fg: RGB, bg: RGB) -> np.ndarray:
    """An RGB panel of even height with one text line per entry, each cut to fit."""
    pad, line_h = max(2, size // 3), round(size * 1.25)
    panel_h = len(lines) * line_h + 2 * pad
    image = Image.new("RGB", (width, panel_h + panel_h % 2), bg)
    draw = ImageDraw.Draw(image)
    for row, text in enumerate(lines):
        draw.text((pad, pad + row * line_h), _fit(text, font, width - 2 * pad), font=font, fill=fg)
    return np.asarray(image)


def _fit(text: str, font: Font, max_px: int) -> str:
    """``text`` on one line, cut with an ellipsis to fit ``max_px``."""
    text = " ".join(text.split())
    if font.getlength(text) <= max_px:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if font.getlength(text[:mid] + "…") <= max_px:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "…"


def _to_plate(rgb: np.ndarray, *, top: int) -> _Plate:
    yuv = _rgb_to_yuv(rgb)
    h, w = rgb.shape[:2]
    chroma = yuv[: h // 2 * 2].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    as_u8 = lambda a: np.clip(a + 0.5, 0, 255).astype(np.uint8)  # noqa: E731
    return _Plate(top=top, y=as_u8(yuv[..., 0]), u=as_u8(chroma[..., 1]), v=as_u8(chroma[..., 2]))


def output_size(aspect_ratio: str, render_scale: float) -> tuple[int, int]:
    """Kling's 720p size for ``aspect_ratio``, scaled and rounded to even numbers."""
    return scaled(OUTPUT_SIZES[aspect_ratio], render_scale)


def scaled(size: tuple[int, int], render_scale: float) -> tuple[int, int]:
    """A model's output size scaled by the emulator's ``render_scale``, rounded to even numbers."""
    even = lambda n: max(16, round(n * render_scale / 2) * 2)  # noqa: E731
    return even(size[0]), even(size[1])
