"""Uploading a request's local images to fal storage before it is submitted, each content once ever.

One :class:`Uploader` per run: it looks in the store's upload cache
(:class:`~kling_lab.store.uploads.UploadCache`) first, holds a lock per sha256 so that four
requests sharing one picture upload it once, and records every new upload in the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from kling_lab.backends.base import Backend
from kling_lab.errors import BackendError
from kling_lab.models import ImageRef, ModelRequest
from kling_lab.store.uploads import UploadCache


class Uploader:
    def __init__(self, backend: Backend, cache: UploadCache) -> None:
        self.backend, self.cache = backend, cache
        self._locks: dict[str, asyncio.Lock] = {}
        self.uploaded = 0  # uploads this run made (cache misses)

    @property
    def namespace(self) -> str:
        return str(getattr(self.backend, "storage_namespace", self.backend.name))

    async def urls(self, request: ModelRequest) -> dict[str, str]:
        """Schema field → fal storage URL for each local image of ``request``."""
        return {field: await self.url(ref) for field, ref in request.local_images().items()}

    async def url(self, ref: ImageRef) -> str:
        assert ref.sha256 is not None
        lock = self._locks.setdefault(ref.sha256, asyncio.Lock())
        async with lock:
            cached = self.cache.url(self.namespace, ref.sha256)
            if cached is not None:
                return cached
            data = await asyncio.to_thread(Path(ref.source).read_bytes)
            if hashlib.sha256(data).hexdigest() != ref.sha256:
                raise BackendError(
                    f"{ref.source} changed since the sweep was read; nothing was uploaded", error_type="image_changed"
                )
            name = Path(ref.source).name
            url = await self.backend.upload(data, ref.content_type, name)
            self.uploaded += 1
            await asyncio.to_thread(
                self.cache.record,
                namespace=self.namespace,
                sha256=ref.sha256,
                url=url,
                size=len(data),
                content_type=ref.content_type,
                file_name=name,
            )
            return url


__all__ = ["Uploader"]
