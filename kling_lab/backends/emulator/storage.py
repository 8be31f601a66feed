"""fal storage as the emulator serves it: the upload calls fal_client makes, and the uploaded files.

What ``fal_client.AsyncClient.upload`` / ``upload_file`` do (read from fal_client 1.0.3's source):

- CDN (first choice): ``POST {REST_URL}/storage/auth/token?storage_type=fal-cdn-v3`` with
  ``Authorization: Key …`` → ``{"token", "token_type", "base_url", "expires_at"}``; then
  ``POST {CDN_URL}/files/upload`` with the bytes, ``Content-Type``, ``X-Fal-File-Name`` and
  ``Authorization: <token_type> <token>`` → ``{"access_url"}``;
- storage (the fallback): ``POST {REST_URL}/storage/upload/initiate?storage_type=gcs`` with
  ``{"file_name", "content_type"}`` → ``{"upload_url", "file_url"}``; then ``PUT upload_url``.

Both end in a URL served here (``GET /files/{id}/{name}``). Every upload is counted in
``stats()["uploads"]`` (and by sha256 of its bytes). Multipart uploads (files over 100 MB) are not
emulated: image inputs are far smaller.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from kling_lab.backends.emulator.queue import JobQueue
from kling_lab.backends.emulator.responses import json_response
from kling_lab.util.clock import utcnow

TOKEN_TTL = timedelta(hours=1)
MAX_UPLOAD_BYTES = 64 * 1024**2
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class StoredFile:
    id: str
    name: str
    content_type: str
    path: Path
    sha256: str
    bytes: int
    width: int | None = None
    height: int | None = None


class Storage:
    """Uploaded files (kept in the workshop's directory) and the CDN tokens handed out."""

    def __init__(self, directory: Path, base_url: Callable[[], str]) -> None:
        self.directory = directory
        self._base_url = base_url
        self._files: dict[str, StoredFile] = {}
        self._pending: dict[str, tuple[str, str]] = {}  # initiated storage uploads: id -> (name, content type)
        self._tokens: set[str] = set()

    def url(self, stored: StoredFile) -> str:
        return f"{self._base_url()}/files/{stored.id}/{stored.name}"

    def find(self, url: str) -> StoredFile | None:
        """The stored file behind one of this emulator's file URLs (None for any other URL)."""
        prefix = f"{self._base_url()}/files/"
        if not isinstance(url, str) or not url.startswith(prefix):
            return None
        return self._files.get(url[len(prefix) :].split("/", 1)[0])

    def save(self, data: bytes, name: str, content_type: str, file_id: str | None = None) -> StoredFile:
        file_id = file_id or uuid.uuid4().hex
        safe = _SAFE_NAME.sub("_", name or "upload.bin")[-100:] or "upload.bin"
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{file_id}-{safe}"
        path.write_bytes(data)
        width, height = _pixels(data)
        stored = StoredFile(
            file_id, safe, content_type, path, hashlib.sha256(data).hexdigest(), len(data), width, height
        )
        self._files[file_id] = stored
        return stored

    def clear(self) -> None:
        for stored in self._files.values():
            stored.path.unlink(missing_ok=True)
        self._files.clear()
        self._pending.clear()
        self._tokens.clear()


def _pixels(data: bytes) -> tuple[int | None, int | None]:
    """Width and height when ``data`` is an image (the emulator renders image-to-video at its aspect)."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except Exception:  # noqa: BLE001 - any file may be uploaded; only images have pixels
        return None, None


class StorageRoutes:
    """The HTTP side of :class:`Storage`; ``authorized`` checks fal's ``Authorization: Key …``."""

    def __init__(self, storage: Callable[[], Storage], queue: JobQueue, authorized: Callable[[web.Request], bool]):
        self._storage, self.queue, self._authorized = storage, queue, authorized

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/storage/auth/token", self.token),
            web.post("/files/upload", self.cdn_upload),
            web.post("/storage/upload/initiate", self.initiate),
            web.put("/_emulator/storage/{file_id}", self.put),
            web.get("/files/{file_id}/{name}", self.get),
        ]

    def _count(self, stored: StoredFile) -> None:
        counters = self.queue.counters
        counters.uploads += 1
        counters.upload_bytes += stored.bytes
        counters.uploads_by_sha256[stored.sha256] += 1

    async def token(self, http: web.Request) -> web.StreamResponse:
        if not self._authorized(http):
            return json_response({"detail": "Missing or malformed Authorization header"}, 401)
        token = uuid.uuid4().hex
        storage = self._storage()
        storage._tokens.add(token)
        expires = (utcnow() + TOKEN_TTL).isoformat()
        return json_response(
            {"token": token, "token_type": "Bearer", "base_url": str(http.url.origin()), "expires_at": expires}, 200
        )

    async def cdn_upload(self, http: web.Request) -> web.StreamResponse:
        scheme, _, token = http.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self._storage()._tokens:
            return json_response({"detail": "Invalid or expired upload token"}, 401)
        data = await http.read()
        if len(data) > MAX_UPLOAD_BYTES:
            return json_response({"detail": "File too large"}, 413)
        name = http.headers.get("X-Fal-File-Name") or "upload.bin"
        content_type = http.headers.get("Content-Type") or _guess(name)
        stored = self._storage().save(data, name, content_type)
        self._count(stored)
        url = self._storage().url(stored)
        return json_response({"access_url": url, "content_type": content_type, "file_name": stored.name}, 200)

    async def initiate(self, http: web.Request) -> web.StreamResponse:
        if not self._authorized(http):
            return json_response({"detail": "Missing or malformed Authorization header"}, 401)
        try:
            body: Any = await http.json()
            name, content_type = str(body["file_name"]), str(body["content_type"])
        except (ValueError, KeyError, TypeError):
            return json_response(
                {"detail": [{"loc": ["body"], "msg": "file_name and content_type", "type": "missing"}]}, 422
            )
        file_id = uuid.uuid4().hex
        storage = self._storage()
        storage._pending[file_id] = (name, content_type)
        base = str(http.url.origin())
        safe = _SAFE_NAME.sub("_", name)[-100:] or "upload.bin"
        return json_response(
            {"upload_url": f"{base}/_emulator/storage/{file_id}", "file_url": f"{base}/files/{file_id}/{safe}"}, 200
        )

    async def put(self, http: web.Request) -> web.StreamResponse:
        storage = self._storage()
        file_id = http.match_info["file_id"]
        pending = storage._pending.pop(file_id, None)
        if pending is None:
            return json_response({"detail": "Unknown upload"}, 404)
        data = await http.read()
        stored = storage.save(data, pending[0], http.headers.get("Content-Type") or pending[1], file_id)
        self._count(stored)
        return web.Response(status=200)

    async def get(self, http: web.Request) -> web.StreamResponse:
        stored = self._storage()._files.get(http.match_info["file_id"])
        if stored is None or stored.name != http.match_info["name"]:
            return json_response({"detail": "File not found"}, 404)
        return web.FileResponse(stored.path, headers={"Content-Type": stored.content_type})


def _guess(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


__all__ = ["Storage", "StorageRoutes", "StoredFile"]
