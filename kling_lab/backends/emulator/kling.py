"""Kling 2.0 Master text-to-video as the emulator serves it: a placeholder mp4 of the requested shape."""

from __future__ import annotations

import asyncio
import hashlib
from functools import partial
from pathlib import Path
from typing import Any

from kling_lab.backends.emulator.endpoints import FileUrl, ModelEndpoint, Workshop
from kling_lab.backends.emulator.faults import CONTENT_POLICY_MESSAGE
from kling_lab.backends.emulator.queue import Job, JobFailed
from kling_lab.backends.emulator.render import output_size, render_placeholder
from kling_lab.request import ENDPOINT, KlingRequest


class KlingTextToVideo(ModelEndpoint[KlingRequest]):
    """``fal-ai/kling-video/v2/master/text-to-video``: KlingRequest in, ``{"video": {...}}`` out."""

    endpoint_id = ENDPOINT
    input_model = KlingRequest
    notes = (f"kling_lab emulator: a local stand-in for {ENDPOINT}; videos are placeholders, not Kling output",)

    def arguments(self, value: KlingRequest) -> dict[str, Any]:
        return value.arguments()

    def cost_usd(self, value: KlingRequest) -> float:
        return value.cost_usd()

    async def run(self, job: Job, shop: Workshop) -> Path:
        req: KlingRequest = job.input
        job.log(f"Processing started: {req.duration} s, {req.aspect_ratio}, cfg_scale {req.cfg_scale}")
        config = shop.config
        if shop.faults.content_policy(job, req.prompt):
            await asyncio.sleep(min(0.5, config.service_time_s * 0.1))
            shop.faults.count("content_policy")
            raise JobFailed(CONTENT_POLICY_MESSAGE, "content_policy_violation")
        width, height = output_size(req.aspect_ratio, config.render_scale)
        job.log(f"Rendering placeholder video {width}x{height} at {config.fps} fps")
        variation = int.from_bytes(hashlib.sha256(f"{config.seed}|{job.key}".encode()).digest()[:8], "big")
        render = partial(
            render_placeholder,
            prompt=req.prompt,
            negative_prompt=req.negative_prompt,
            cfg_scale=req.cfg_scale,
            aspect_ratio=req.aspect_ratio,
            duration_s=req.duration_s,
            width=width,
            height=height,
            fps=config.fps,
            variation_seed=variation,
        )
        try:
            return await shop.make_file(job, f"emulator-{job.request_id}.mp4", render)
        except Exception as exc:
            raise JobFailed(f"Rendering failed: {exc}", "internal_server_error") from exc

    def output(self, job: Job, file_url: FileUrl) -> dict[str, Any]:
        video: Path = job.result
        return {
            "video": {
                "url": file_url(video.name),
                "content_type": "video/mp4",
                "file_name": video.name,
                "file_size": video.stat().st_size,
            }
        }
