"""Poster frames and strips: sizes, which frames are picked, caching."""

from __future__ import annotations

import os
from pathlib import Path

import clips
import numpy as np
import pytest
from PIL import Image

import kling_lab.media.frames as frames_module
from kling_lab.media.frames import frame_strip, poster


def frame_index(image: Image.Image) -> float:
    """The frame index encoded by a ``ramp_frames`` clip's brightness (10 + 5·i)."""
    return (float(np.asarray(image.convert("L")).mean()) - 10) / 5


@pytest.fixture(scope="module")
def ramp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 frames, brightness encodes the index, keyframe every 12 frames (so seeks matter)."""
    return clips.write_clip(tmp_path_factory.mktemp("frames") / "ramp.mp4", clips.ramp_frames(), gop=12)


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A fresh 320×180 moving clip in its own folder (default outputs land next to it)."""
    return clips.write_clip(tmp_path / "clip.mp4", clips.moving_frames(n=24))


def test_poster_default_path_and_size(video: Path) -> None:
    out = poster(video)
    assert out == video.with_name("clip.poster.jpg")
    with Image.open(out) as image:
        assert image.format == "JPEG" and image.size == (320, 180)  # 480 would upscale: native size kept
    with Image.open(poster(video, video.with_name("small.png"), max_side=160)) as image:
        assert image.format == "PNG" and image.size == (160, 90)


@pytest.mark.parametrize(("at", "index"), [(0.0, 0), (0.25, 12), (0.5, 24), (1.0, 47)])
def test_poster_picks_the_frame_at_the_fraction(ramp: Path, tmp_path: Path, at: float, index: int) -> None:
    with Image.open(poster(ramp, tmp_path / f"p{at}.png", at=at)) as image:
        assert frame_index(image) == pytest.approx(index, abs=0.6)


def test_strip_has_n_tiles_at_slice_centres(ramp: Path, tmp_path: Path) -> None:
    out = frame_strip(ramp, tmp_path / "strip.png", n=6, height=60)
    with Image.open(out) as strip:
        tile_w = round(60 * 320 / 180)
        assert strip.size == (6 * tile_w, 60)
        tiles = [strip.crop((i * tile_w, 0, (i + 1) * tile_w, 60)) for i in range(6)]
    assert [frame_index(t) for t in tiles] == pytest.approx([4, 12, 20, 28, 36, 44], abs=0.6)


def test_strip_without_keyframes_to_seek_to(tmp_path: Path) -> None:
    one_gop = clips.write_clip(tmp_path / "one_gop.mp4", clips.ramp_frames(), gop=250)
    tiles = frames_module.grab_frames(one_gop, [0.1, 0.9, 0.5], height=30)
    assert [frame_index(t) for t in tiles] == pytest.approx([5, 43, 24], abs=0.6)


def test_strip_default_path_and_portrait_tiles(tmp_path: Path) -> None:
    portrait = clips.write_clip(tmp_path / "tall.mp4", (f.T.copy() for f in clips.static_frames(n=12)))
    out = frame_strip(portrait, n=4, height=64)
    assert out == tmp_path / "tall.strip4.jpg"
    with Image.open(out) as strip:
        assert strip.size == (4 * 36, 64)


def test_cached_outputs_are_not_redecoded(video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first_poster, first_strip = poster(video), frame_strip(video)
    stamps = {p: p.stat().st_mtime_ns for p in (first_poster, first_strip)}

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached image was decoded again")

    monkeypatch.setattr(frames_module, "open_video", no_decoding)
    assert poster(video) == first_poster and frame_strip(video) == first_strip
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_newer_video_invalidates_the_cache(video: Path) -> None:
    out = poster(video)
    old = out.stat().st_mtime_ns
    later = old + 5_000_000_000
    os.utime(video, ns=(later, later))
    assert poster(video).stat().st_mtime_ns != old


def test_bad_arguments(video: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        poster(video, at=1.5)
    with pytest.raises(ValueError):
        frame_strip(video, n=0)
    with pytest.raises(ValueError):
        poster(video, tmp_path / "poster.unknown")
    with pytest.raises(FileNotFoundError):
        poster(tmp_path / "missing.mp4")
