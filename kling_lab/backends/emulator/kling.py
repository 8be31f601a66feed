"""Kling 2.0 Master text-to-video, the endpoint the emulator served first (now one registered model of many)."""

from __future__ import annotations

from kling_lab.backends.emulator.video import VideoEndpoint
from kling_lab.models import get_model
from kling_lab.request import ENDPOINT


class KlingTextToVideo(VideoEndpoint):
    """``fal-ai/kling-video/v2/master/text-to-video``: KlingRequest in, ``{"video": {...}}`` out."""

    def __init__(self) -> None:
        model = get_model("kling-2.0-master")
        endpoint = model.endpoint_by_id(ENDPOINT)
        assert endpoint is not None
        super().__init__(model, endpoint)
