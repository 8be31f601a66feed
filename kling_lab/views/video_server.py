"""A loopback HTTP server that lets the notebook's browser fetch videos by URL.

Started on demand (first ``url()`` call) in a daemon thread with its own asyncio loop, bound to
127.0.0.1 on a free port. It serves only files registered through ``url()``, each under an
unguessable random key, so it exposes neither the store directory nor anything else on disk.
``aiohttp.web.FileResponse`` answers HTTP Range requests (206 partial content), which browsers
need to scrub and seek a ``<video>`` without downloading it whole.

This works when the browser runs on the same machine as the kernel (local Jupyter, VS Code).
On a remote JupyterHub the browser cannot reach the kernel's loopback: see ``kling_lab.views.sources``.
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from kling_lab.util.loop_thread import LoopThread

if TYPE_CHECKING:
    from aiohttp import web

HOST = "127.0.0.1"


class MediaServer:
    """Serves registered local files at ``http://127.0.0.1:<port>/f/<key>/<name>``."""

    def __init__(self) -> None:
        self._files: dict[str, Path] = {}
        self._keys: dict[Path, str] = {}
        self._lock = threading.Lock()
        self._thread = LoopThread("kling-lab-media")
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def url(self, path: str | Path) -> str:
        """The URL of a local file (registering it, and starting the server if needed)."""
        path = Path(path).resolve()
        with self._lock:
            key = self._keys.get(path)
            if key is None:
                key = self._keys[path] = secrets.token_urlsafe(12)
                self._files[key] = path
        self.start()
        return f"http://{HOST}:{self.port}/f/{key}/{quote(path.name)}"

    def start(self) -> None:
        """Start the server thread (no-op when running)."""
        with self._lock:
            if self._thread.running:
                return
            self._runner, self.port = self._thread.start().call(self._serve(), timeout=30)

    def stop(self) -> None:
        """Stop serving and end the thread (registered files stay registered for a restart)."""
        with self._lock:
            runner, self._runner = self._runner, None
            self._thread.stop(runner.cleanup() if runner is not None else None)

    async def _serve(self) -> tuple[web.AppRunner, int]:
        from aiohttp import web  # imported when the first URL is asked for

        app = web.Application()
        app.router.add_get("/f/{key}/{name}", self._handle)  # also answers HEAD
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        port = runner.addresses[0][1]
        return runner, port

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        path = self._files.get(request.match_info["key"])
        if path is None or not path.is_file():
            raise web.HTTPNotFound(text="not a registered file")
        return web.FileResponse(
            path, headers={"Cache-Control": "private, max-age=3600", "Access-Control-Allow-Origin": "*"}
        )


_SERVER: MediaServer | None = None
_SERVER_LOCK = threading.Lock()


def media_server() -> MediaServer:
    """The process-wide server (created, not started, on first call)."""
    global _SERVER
    with _SERVER_LOCK:
        if _SERVER is None:
            _SERVER = MediaServer()
        return _SERVER
