"""Inline previews: a downscaled H.264 re-encode that keeps the clip's frames and duration."""

from __future__ import annotations

import base64
import io

import av
from clips import moving_frames, write_clip

from kling_lab.views.preview import encode_preview, preview_data_uri


def test_preview_is_small_h264_of_the_same_length(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", moving_frames(48))  # 320×180, 2 s at 24 fps
    data = encode_preview(clip, max_side=120)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        # 67.5 px rounds to 68, an even size as yuv420p needs
        assert (stream.codec_context.width, stream.codec_context.height) == (120, 68)
        assert stream.frames == 48 and abs(float(stream.duration * stream.time_base) - 2.0) < 0.05


def test_data_uri(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", moving_frames(12))
    uri = preview_data_uri(clip)
    assert uri.startswith("data:video/mp4;base64,")
    assert base64.b64decode(uri.split(",", 1)[1])[4:8] == b"ftyp"
