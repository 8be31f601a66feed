"""Small inline previews for notebooks that must travel: a downscaled H.264 re-encode as a data URI.

A 5 s clip at ≤ 240 px and CRF 32 is some tens of KB (placeholders) to a few hundred KB (busy
footage), so a 16-cell grid with ``embed=True`` adds up to a few MB to the saved notebook (versus
a few KB per cell for referenced videos).
"""

from __future__ import annotations

import base64
import io
import os
from fractions import Fraction

import av

from kling_lab.media.probe import fit_within, open_video, stream_fps


def encode_preview(path: str | os.PathLike[str], *, max_side: int = 240, crf: int = 32) -> bytes:
    """The clip re-encoded to H.264 (yuv420p, baseline-friendly) at most ``max_side`` px, as mp4 bytes."""
    out = io.BytesIO()
    with open_video(path) as (source, stream):
        width, height = fit_within(stream.codec_context.width, stream.codec_context.height, max_side)
        width, height = max(2, width - width % 2), max(2, height - height % 2)  # yuv420p needs even sizes
        fps = Fraction(stream_fps(stream) or 24).limit_denominator(1001)
        with av.open(out, "w", format="mp4") as sink:  # faststart needs a named file; data URIs load whole anyway
            encoder = sink.add_stream("libx264", rate=fps)
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
            encoder.options = {"crf": str(crf), "preset": "veryfast", "profile": "main"}
            for index, frame in enumerate(source.decode(stream)):
                small = frame.reformat(width=width, height=height, format="yuv420p")
                small.pts, small.time_base = index, 1 / fps  # constant rate, whatever the source's stamps
                sink.mux(encoder.encode(small))
            sink.mux(encoder.encode(None))
    return out.getvalue()


def preview_data_uri(path: str | os.PathLike[str], *, max_side: int = 240) -> str:
    """``data:video/mp4;base64,…`` of :func:`encode_preview`."""
    return "data:video/mp4;base64," + base64.b64encode(encode_preview(path, max_side=max_side)).decode("ascii")
