"""QC metrics and probe on synthetic clips with known properties (rendered once per module)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import clips
import numpy as np
import pytest

import kling_lab.media.qc as qc_module
from kling_lab.errors import DownloadError
from kling_lab.media.probe import NotAVideoError, probe
from kling_lab.media.qc import METRICS, compute_qc, qc_from_luma, read_luma

RECIPES: dict[str, Callable[[], Iterator[clips.Frame]]] = {
    "static": clips.static_frames,
    "moving": clips.moving_frames,
    "fast": lambda: clips.moving_frames(speed=12),
    "one_cut": lambda: clips.cut_frames(1),
    "two_cuts": lambda: clips.cut_frames(2),
    "black": clips.black_frames,
    "sharp": lambda: clips.static_frames(seed=5),
    "blurred": lambda: clips.blurred(clips.static_frames(seed=5)),
    "flicker": clips.flicker_frames,
    "steady": lambda: clips.flicker_frames(amplitude=0),
    "fade": clips.fade_frames,
}


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Render a recipe to an mp4 on first use."""
    folder = tmp_path_factory.mktemp("qc_clips")

    def get(name: str) -> Path:
        path = folder / f"{name}.mp4"
        return path if path.exists() else clips.write_clip(path, RECIPES[name]())

    return get


@pytest.fixture(scope="module")
def qc(clip_path: Callable[[str], Path]) -> Callable[[str], dict[str, float]]:
    """compute_qc of a recipe, memoised."""
    cache: dict[str, dict[str, float]] = {}

    def get(name: str) -> dict[str, float]:
        if name not in cache:
            cache[name] = compute_qc(clip_path(name))
        return cache[name]

    return get


def test_returns_exactly_the_documented_metrics(qc: Callable[[str], dict[str, float]]) -> None:
    result = qc("moving")
    assert set(result) == set(METRICS)
    assert all(isinstance(v, float) and math.isfinite(v) for v in result.values())
    assert all(f"``{name}``" in (qc_module.__doc__ or "") for name in METRICS)


def test_static_clip_is_frozen_without_motion_or_cuts(qc: Callable[[str], dict[str, float]]) -> None:
    result = qc("static")
    assert result["qc_motion"] < 0.5
    assert result["qc_frozen_frames"] >= 0.95
    assert result["qc_scene_cuts"] == 0
    assert result["qc_black_frames"] == 0


def test_moving_clip_has_motion_and_no_false_cuts(qc: Callable[[str], dict[str, float]]) -> None:
    assert qc("moving")["qc_motion"] > qc("static")["qc_motion"] + 5
    assert qc("fast")["qc_motion"] > qc("moving")["qc_motion"]
    for name in ("moving", "fast"):
        assert qc(name)["qc_scene_cuts"] == 0, name
        assert qc(name)["qc_frozen_frames"] == 0, name


@pytest.mark.parametrize(("name", "cuts"), [("one_cut", 1), ("two_cuts", 2)])
def test_hard_cuts_are_counted(qc: Callable[[str], dict[str, float]], name: str, cuts: int) -> None:
    assert qc(name)["qc_scene_cuts"] == cuts
    # the cut pairs are left out of motion and flicker: each scene only pans slowly
    assert qc(name)["qc_motion"] < 15
    assert qc(name)["qc_flicker"] < 1


def test_black_clip_is_all_black(qc: Callable[[str], dict[str, float]]) -> None:
    assert qc("black")["qc_black_frames"] == pytest.approx(1.0)
    assert qc("black")["qc_sharpness"] < 1


def test_blur_lowers_sharpness(qc: Callable[[str], dict[str, float]]) -> None:
    assert qc("blurred")["qc_sharpness"] < 0.5 * qc("sharp")["qc_sharpness"]


def test_alternating_brightness_flickers_without_cuts(qc: Callable[[str], dict[str, float]]) -> None:
    assert qc("flicker")["qc_flicker"] > 10
    assert qc("steady")["qc_flicker"] < 1
    assert qc("flicker")["qc_scene_cuts"] == 0


def test_fade_is_neither_cut_nor_flicker(qc: Callable[[str], dict[str, float]]) -> None:
    assert qc("fade")["qc_scene_cuts"] == 0
    assert qc("fade")["qc_flicker"] < 2


def test_read_luma_scales_to_max_side(clip_path: Callable[[str], Path], tmp_path: Path) -> None:
    luma = read_luma(clip_path("static"), max_side=160)
    assert luma.shape == (48, 90, 160) and luma.dtype == np.uint8
    portrait = clips.write_clip(tmp_path / "portrait.mp4", (f.T.copy() for f in clips.static_frames(n=4)))
    assert read_luma(portrait, max_side=64).shape == (4, 64, 36)
    assert read_luma(portrait, max_side=1000).shape == (4, 320, 180)  # never upscaled


def test_formulas_on_a_known_array() -> None:
    # flat frames alternating 100, 120: every pair differs by 20 levels, mean changes +20, -20, ...
    luma = np.array([np.full((9, 16), 100 + 20 * (i % 2), np.uint8) for i in range(11)])
    result = qc_from_luma(luma)
    assert result["qc_motion"] == pytest.approx(20)
    assert result["qc_flicker"] == pytest.approx(20)
    assert result["qc_sharpness"] == 0
    assert result["qc_frozen_frames"] == 0
    assert result["qc_scene_cuts"] == 0
    # thresholds are configurable
    assert qc_from_luma(luma, black_threshold=110)["qc_black_frames"] == pytest.approx(6 / 11)
    assert qc_from_luma(luma, frozen_threshold=25)["qc_frozen_frames"] == 1


def test_single_frame_has_no_pair_metrics() -> None:
    result = qc_from_luma(np.zeros((1, 9, 16), np.uint8))
    assert math.isnan(result["qc_motion"]) and math.isnan(result["qc_frozen_frames"])
    assert result["qc_scene_cuts"] == 0 and result["qc_black_frames"] == 1


def test_qc_of_a_non_video_raises(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(NotAVideoError):
        compute_qc(junk)


# ---- probe -------------------------------------------------------------------------------------


def test_probe_generated_clip(clip_path: Callable[[str], Path]) -> None:
    info = probe(clip_path("static"))
    assert info == {
        "width": 320,
        "height": 180,
        "fps": 24.0,
        "frames": 48,
        "video_duration_s": pytest.approx(2.0, abs=0.05),
        "codec": "h264",
    }


def test_probe_counts_frames_by_decoding_when_the_container_has_no_count(tmp_path: Path) -> None:
    mkv = clips.write_clip(tmp_path / "clip.mkv", clips.static_frames(n=30))
    info = probe(mkv)
    assert (info["frames"], info["fps"], info["width"]) == (30, 24.0, 320)
    assert info["video_duration_s"] == pytest.approx(1.25, abs=0.05)


@pytest.mark.parametrize("kind", ["text", "png", "empty"])
def test_probe_rejects_non_videos(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"not_a_video.{kind}"
    if kind == "text":
        path.write_text("hello, I am not an mp4\n" * 50)
    elif kind == "png":
        from PIL import Image

        Image.new("RGB", (32, 32)).save(path, format="PNG")
    else:
        path.write_bytes(b"")
    with pytest.raises(NotAVideoError) as info:
        probe(path)
    assert isinstance(info.value, ValueError) and isinstance(info.value, DownloadError)
    assert info.value.error_type == "bad_video" and not info.value.transient


def test_probe_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "nope.mp4")
