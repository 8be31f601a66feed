"""Poster frames and frame strips of a video, written as images next to it and cached.

A cached image is reused when it is at least as new as the video (by mtime); the cache key is the
output path only, so pass your own ``out_path`` when you want several variants (other ``at``, sizes).
Frames are picked by time: the decoder jumps to the last keyframe before each wanted frame when that
skips work, and otherwise keeps decoding forward, so a strip costs at most one pass over the clip.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import av
import av.container
import av.video.stream
from PIL import Image

from kling_lab.media.probe import NotAVideoError, duration_s, fit_within, open_video, start_s, stream_fps

__all__ = ["frame_strip", "grab_frames", "poster"]


def poster(
    video_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None = None,
    *,
    at: float = 0.5,
    max_side: int = 480,
) -> Path:
    """A JPEG of the frame at fraction ``at`` (0 = first, 1 = last) of the clip, at most ``max_side`` px.

    Default path: ``<stem>.poster.jpg`` next to the video. Returns the cached file without decoding if fresh.
    """
    if not 0.0 <= at <= 1.0:
        raise ValueError(f"at is a fraction of the clip in [0, 1], got {at}")
    video = Path(video_path)
    out = Path(out_path) if out_path is not None else video.with_name(f"{video.stem}.poster.jpg")
    if _is_fresh(out, video):
        return out
    (image,) = grab_frames(video, [at], max_side=max_side)
    return _save_atomic(image, out)


def frame_strip(
    video_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None = None,
    *,
    n: int = 6,
    height: int = 120,
) -> Path:
    """``n`` frames at the centres of ``n`` equal slices of the clip, side by side, each ``height`` px tall.

    Default path: ``<stem>.strip{n}.jpg`` next to the video. Returns the cached file without decoding if fresh.
    """
    if n < 1 or height < 1:
        raise ValueError(f"n and height must be >= 1, got n={n}, height={height}")
    video = Path(video_path)
    out = Path(out_path) if out_path is not None else video.with_name(f"{video.stem}.strip{n}.jpg")
    if _is_fresh(out, video):
        return out
    tiles = grab_frames(video, [(i + 0.5) / n for i in range(n)], height=height)
    strip = Image.new("RGB", (sum(t.width for t in tiles), height))
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width
    return _save_atomic(strip, out)


def grab_frames(
    video_path: str | os.PathLike[str],
    fractions: list[float],
    *,
    max_side: int | None = None,
    height: int | None = None,
) -> list[Image.Image]:
    """RGB images of the frames at the given fractions of the clip, scaled by FFmpeg while converting.

    The size fits ``max_side`` (never upscaled) or has the given ``height`` (aspect kept); neither: native size.
    A fraction picks the frame whose start is nearest to ``start + fraction × duration`` (clamped to the last
    frame's start): ``round(fraction × frame count)`` for a constant-rate clip.
    """
    with open_video(video_path) as (container, stream):
        ctx = stream.codec_context
        if height is not None:
            size = (max(1, round(height * ctx.width / ctx.height)), height)
        else:
            size = fit_within(ctx.width, ctx.height, max_side or max(ctx.width, ctx.height))
        tb = stream.time_base
        if tb is None:
            raise NotAVideoError(f"{os.fspath(video_path)!r} has no time base")
        fps = stream_fps(stream) or 24.0
        start, length = start_s(stream), duration_s(container, stream)
        last = start + max(0.0, length - 1.0 / fps)
        # wanted presentation times in stream ticks, less half a frame so rounding never skips the frame
        wanted = [int((min(start + f * length, last) - 0.5 / fps) / tb) for f in fractions]
        try:
            found = _frames_at(container, stream, sorted(set(wanted)))
        except av.FFmpegError as exc:
            raise NotAVideoError(f"cannot decode {os.fspath(video_path)!r}: {exc}") from exc
        if not found:
            raise NotAVideoError(f"{os.fspath(video_path)!r} has no decodable frames")
        images = {t: frame.to_image(width=size[0], height=size[1]) for t, frame in found.items()}
    return [images[t] for t in wanted]


def _frames_at(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, targets: list[int]
) -> dict[int, av.VideoFrame]:
    """For each sorted pts ``target``: the first frame with ``pts >= target`` (else the last frame).

    Seeks to the last keyframe before a target only when that keyframe lies beyond the frame already
    decoded (a seek there skips work); otherwise decodes forward. Empty dict if nothing decodes.
    """
    keyframes = [p.pts for p in container.demux(stream) if p.is_keyframe and p.pts is not None]
    found: dict[int, av.VideoFrame] = {}
    decoded: Iterator[av.VideoFrame] | None = None
    current: av.VideoFrame | None = None
    for target in targets:
        position = None if current is None else current.pts
        if position is None or position < target:
            key = max((k for k in keyframes if k <= target), default=0)
            if decoded is None or position is None or key > position:
                container.seek(key, stream=stream, backward=True)
                decoded = container.decode(stream)
            for current in decoded:
                if current.pts is not None and current.pts >= target:
                    break
        if current is None:
            return {}
        found[target] = current
    return found


def _is_fresh(out: Path, video: Path) -> bool:
    """True if ``out`` exists and is at least as new as ``video`` (which must exist)."""
    if not video.exists():
        raise FileNotFoundError(f"no such video file: {str(video)!r}")
    return out.exists() and out.stat().st_mtime_ns >= video.stat().st_mtime_ns


def _save_atomic(image: Image.Image, out: Path) -> Path:
    """Write ``image`` to ``out`` (format from its suffix) via a temp file and a rename."""
    fmt = Image.registered_extensions().get(out.suffix.lower())
    if fmt is None:
        raise ValueError(f"unknown image suffix {out.suffix!r} for {str(out)!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            image.save(fh, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
