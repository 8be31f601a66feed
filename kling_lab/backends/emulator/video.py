"""Any registered model's endpoint as the emulator serves it: a placeholder mp4 of that model's shape.

The input is validated with the model's own schema (a fal-style 422 otherwise), the clip is rendered
at the model's output size for the request (scaled by ``render_scale``) and length, and the result
body has the shape of the model's fal page: ``{"video": {"url", "content_type", "file_name",
"file_size"}}`` plus the page's other keys (e.g. Seedance's ``seed``). An image-to-video request
whose image was uploaded to this emulator is rendered at the image's aspect ratio.
"""

from __future__ import annotations

import asyncio
import hashlib
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from kling_lab.backends.emulator.endpoints import FileUrl, ModelEndpoint, Rendered, Workshop
from kling_lab.backends.emulator.faults import CONTENT_POLICY_MESSAGE
from kling_lab.backends.emulator.queue import Job, JobFailed
from kling_lab.backends.emulator.render import render_placeholder, scaled
from kling_lab.models import Endpoint, Model
from kling_lab.models.pricing import seconds_of


class VideoEndpoint(ModelEndpoint[BaseModel]):
    """One endpoint of a registered model (text- or image-to-video)."""

    def __init__(self, model: Model, endpoint: Endpoint) -> None:
        self.model, self.endpoint = model, endpoint
        self.endpoint_id = endpoint.id
        self.input_model = endpoint.schema
        self.notes = (
            f"kling_lab emulator: a local stand-in for {endpoint.id} ({model.name}); "
            "videos are placeholders, not model output",
        )

    def arguments(self, value: BaseModel) -> dict[str, Any]:
        return value.model_dump(mode="json", exclude_none=True)

    def cost_usd(self, value: BaseModel) -> float:
        price = self.endpoint.cost(self.arguments(value))
        return 0.0 if price is None else float(price)

    def size(self, arguments: dict[str, Any], shop: Workshop) -> tuple[int, int]:
        """The model's output size; for image-to-video without an aspect ratio, the uploaded image's."""
        if "aspect_ratio" not in arguments or arguments["aspect_ratio"] == "auto":
            image = shop.storage.find(arguments.get(self.endpoint.image_field or "", ""))
            if image is not None and image.width and image.height:
                return self._nearest(image.width / image.height, arguments)
        return self.endpoint.output_size(arguments)

    def _nearest(self, ratio: float, arguments: dict[str, Any]) -> tuple[int, int]:
        resolution = str(arguments.get("resolution", self.endpoint.default_resolution))
        sizes = [size for (res, _), size in self.endpoint.sizes.items() if res == resolution] or list(
            self.endpoint.sizes.values()
        )
        return min(sizes, key=lambda size: abs(size[0] / size[1] - ratio))

    async def run(self, job: Job, shop: Workshop) -> Path:
        args = self.arguments(job.input)
        prompt = str(args.get("prompt", ""))
        seconds = seconds_of(args, self.endpoint.default_duration_s)
        job.log(f"Processing started: {self.model.alias}, {seconds} s")
        config = shop.config
        if shop.faults.content_policy(job, prompt):
            await asyncio.sleep(min(0.5, config.service_time_s * 0.1))
            shop.faults.count("content_policy")
            raise JobFailed(CONTENT_POLICY_MESSAGE, "content_policy_violation")
        width, height = scaled(self.size(args, shop), config.render_scale)
        job.log(f"Rendering placeholder video {width}x{height} at {config.fps} fps")
        variation = int.from_bytes(hashlib.sha256(f"{config.seed}|{job.key}".encode()).digest()[:8], "big")
        drawn = Rendered(
            prompt=prompt,
            negative_prompt=str(args.get("negative_prompt") or ""),
            cfg_scale=float(args.get("cfg_scale", 0.5)),
            duration_s=float(seconds),
            model=self.model.alias,
        )
        render = partial(
            render_placeholder,
            prompt=prompt,
            negative_prompt=str(args.get("negative_prompt") or ""),
            cfg_scale=float(args.get("cfg_scale", 0.5)),
            aspect_ratio=str(args.get("aspect_ratio") or f"{width}x{height}"),
            duration_s=seconds,
            width=width,
            height=height,
            fps=config.fps,
            variation_seed=variation,
            blind=config.blind,
            comment=drawn.comment(),
        )
        try:
            return await shop.make_file(job, f"emulator-{job.request_id}.mp4", render)
        except Exception as exc:
            raise JobFailed(f"Rendering failed: {exc}", "internal_server_error") from exc

    def output(self, job: Job, file_url: FileUrl) -> dict[str, Any]:
        video: Path = job.result
        body: dict[str, Any] = {
            "video": {
                "url": file_url(video.name),
                "content_type": "video/mp4",
                "file_name": video.name,
                "file_size": video.stat().st_size,
            }
        }
        if "seed" in self.endpoint.output_extra:
            seed = self.arguments(job.input).get("seed")
            body["seed"] = seed if isinstance(seed, int) and seed >= 0 else int(job.key[:8], 16)
        return body


__all__ = ["VideoEndpoint"]
