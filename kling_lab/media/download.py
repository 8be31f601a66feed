"""Download a result video into the store: size cap, Content-Length check, sha256, playable check.

fal's output URLs expire (about an hour), so the runner downloads as soon as a request completes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from kling_lab.errors import DownloadError

MAX_VIDEO_BYTES = 500 * 1024 * 1024
CHUNK = 1 << 20


@dataclass(frozen=True)
class Downloaded:
    """A video fetched to a local file."""

    path: Path
    sha256: str
    bytes: int
    seconds: float


async def download(
    client: httpx.AsyncClient, url: str, dest: Path, *, max_bytes: int = MAX_VIDEO_BYTES, timeout_s: float = 300.0
) -> Downloaded:
    """Stream ``url`` into ``dest``; verify its size and that PyAV can open it.

    Raises :class:`DownloadError` with ``error_type`` ``too_large`` (not retryable),
    ``truncated``, ``http_<code>``, ``connection_error`` or ``bad_video``.
    """
    started = time.perf_counter()
    digest = hashlib.sha256()
    received = 0
    try:
        async with client.stream("GET", url, timeout=timeout_s) as response:
            if response.status_code >= 400:
                raise DownloadError(
                    f"video download failed: HTTP {response.status_code}",
                    error_type=f"http_{response.status_code}",
                    transient=response.status_code >= 500 or response.status_code == 429,
                )
            expected = _content_length(response)
            if expected is not None and expected > max_bytes:
                raise DownloadError(
                    f"video is {expected} bytes, more than the cap of {max_bytes}",
                    error_type="too_large",
                    transient=False,
                )
            with open(dest, "wb") as fh:
                async for chunk in response.aiter_raw(CHUNK):
                    received += len(chunk)
                    if received > max_bytes:
                        raise DownloadError(
                            f"video exceeds the cap of {max_bytes} bytes", error_type="too_large", transient=False
                        )
                    digest.update(chunk)
                    fh.write(chunk)
    except DownloadError:
        dest.unlink(missing_ok=True)
        raise
    except (httpx.TransportError, httpx.TimeoutException) as exc:
        dest.unlink(missing_ok=True)
        kind = "truncated" if isinstance(exc, httpx.RemoteProtocolError) else "connection_error"
        raise DownloadError(
            f"video download interrupted after {received} bytes: {type(exc).__name__}", error_type=kind
        ) from exc
    if expected is not None and received != expected:
        dest.unlink(missing_ok=True)
        raise DownloadError(f"video truncated: got {received} of {expected} bytes", error_type="truncated")
    check_playable(dest)
    return Downloaded(dest, digest.hexdigest(), received, time.perf_counter() - started)


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def check_playable(path: Path) -> None:
    """Raise DownloadError(bad_video) unless PyAV opens ``path`` and decodes a video frame."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DownloadError("downloaded file has no video stream", error_type="bad_video")
            for _ in container.decode(video=0):
                return
        raise DownloadError("downloaded video has no decodable frame", error_type="bad_video")
    except DownloadError:
        path.unlink(missing_ok=True)
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        path.unlink(missing_ok=True)
        raise DownloadError(f"downloaded file is not a playable video: {exc}", error_type="bad_video") from exc
