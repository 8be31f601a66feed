"""The frame signature: its shape, and distances that rank clips the way the eye would."""

import numpy as np
import pytest
from clips import moving_frames, static_frames, write_clip

from kling_lab.media.signature import LOOK_SIZE, MOTION_SIZE, frame_signature, signature_distances


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("sig")
    return {
        "static": write_clip(d / "static.mp4", static_frames(48, seed=1)),
        "static_again": write_clip(d / "static_again.mp4", static_frames(48, seed=1), crf=24),
        "moving": write_clip(d / "moving.mp4", moving_frames(48, speed=3, seed=1)),
        "faster": write_clip(d / "faster.mp4", moving_frames(48, speed=9, seed=1)),
    }


def test_signature_has_look_and_motion_maps(clips):
    sig = frame_signature(clips["moving"], samples=5)
    assert sig.look.shape == (5, LOOK_SIZE[1], LOOK_SIZE[0])
    assert sig.motion.shape == (5, MOTION_SIZE[1], MOTION_SIZE[0])
    assert frame_signature(clips["static"]).motion.max() < 1.0  # a still clip does not move
    assert frame_signature(clips["faster"]).motion.mean() > frame_signature(clips["moving"]).motion.mean()


def test_distances_are_a_metric_like_matrix_that_ranks_motion(clips):
    names = ["static", "static_again", "moving", "faster"]
    d = signature_distances([clips[n] for n in names])
    assert d.shape == (4, 4)
    assert np.allclose(d, d.T) and np.allclose(np.diag(d), 0)
    assert d[0, 1] < 1.0  # the same picture re-encoded
    assert d[0, 1] < d[0, 2] < d[0, 3]  # further apart the more the clip moves


def test_samples_must_be_positive(clips):
    with pytest.raises(ValueError, match="samples"):
        frame_signature(clips["static"], samples=0)
