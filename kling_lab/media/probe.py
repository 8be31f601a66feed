"""Open a video file with PyAV and describe it: size, frame rate, frame count, duration, codec.

``open_video`` is the one place that turns "PyAV cannot read this" into ``NotAVideoError``;
``qc`` and ``frames`` decode through it, so every module reports an unreadable file the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import TypedDict

import av
import av.container
import av.video.stream

from kling_lab.errors import DownloadError

__all__ = ["NotAVideoError", "VideoInfo", "duration_s", "fit_within", "open_video", "probe", "start_s", "stream_fps"]


class NotAVideoError(DownloadError, ValueError):
    """The file exists but is not a readable video (not a container PyAV knows, no video stream, a still image)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_type="bad_video", transient=False)


class VideoInfo(TypedDict):
    """What ``probe`` returns; the keys are run-log column names."""

    width: int
    height: int
    fps: float
    frames: int
    video_duration_s: float
    codec: str


@contextmanager
def open_video(
    path: str | os.PathLike[str],
) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """Open ``path`` and yield ``(container, first video stream)``; closes the container on exit.

    Raises ``FileNotFoundError`` if there is no such file and ``NotAVideoError`` if it cannot be read as a video.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such video file: {os.fspath(path)!r}")
    try:
        container = av.open(os.fspath(path), mode="r")
    except av.FFmpegError as exc:
        raise NotAVideoError(f"not a readable video: {os.fspath(path)!r} ({exc})") from exc
    try:
        fmt = container.format.name
        if fmt == "image2" or fmt.endswith("_pipe"):
            raise NotAVideoError(f"{os.fspath(path)!r} is a still image ({fmt}), not a video")
        if not container.streams.video:
            raise NotAVideoError(f"{os.fspath(path)!r} has no video stream")
        yield container, container.streams.video[0]
    finally:
        container.close()


def fit_within(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size that fits ``width``×``height`` inside a ``max_side`` square, keeping the aspect; never upscales."""
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def stream_fps(stream: av.video.stream.VideoStream) -> float:
    """The stream's average frame rate (falling back to FFmpeg's guess), 0.0 if unknown."""
    rate: Fraction | None = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def duration_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    """The stream's duration in seconds (the container's if the stream has none), 0.0 if unknown."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def start_s(stream: av.video.stream.VideoStream) -> float:
    """The presentation time of the stream's first frame in seconds (0.0 if unknown)."""
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Width, height, fps, frame count, duration and codec of the first video stream of ``path``.

    ``frames`` is the container's count when it has one (mp4 does), else the number of decoded frames;
    ``video_duration_s`` is the stream duration, else the container's, else ``frames / fps``.
    """
    with open_video(path) as (container, stream):
        ctx = stream.codec_context
        fps = stream_fps(stream)
        frames = stream.frames
        if not frames:
            try:
                frames = sum(1 for _ in container.decode(stream))
            except av.FFmpegError as exc:
                raise NotAVideoError(f"cannot decode {os.fspath(path)!r}: {exc}") from exc
        seconds = duration_s(container, stream) or (frames / fps if fps else 0.0)
        return VideoInfo(
            width=int(ctx.width),
            height=int(ctx.height),
            fps=fps,
            frames=int(frames),
            video_duration_s=seconds,
            codec=str(ctx.name),
        )
