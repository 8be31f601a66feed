"""How the browser gets a cell's video bytes: the URL (or data URI) each view puts in ``<video src>``.

Videos are referenced, not inlined, so a saved notebook stays small (a few KB per cell). Choose
with ``compare(..., source=...)``:

- ``"server"`` (default): a loopback aiohttp server in the kernel (``kling_lab.views.server``),
  started on demand, serving only the grid's files, with HTTP Range so the browser can scrub.
  Works whenever the browser runs on the kernel's machine (local JupyterLab / Notebook, VS Code).
  It cannot work on a remote JupyterHub: the browser's 127.0.0.1 is not the kernel's. The URLs
  live as long as the kernel: after reopening a saved notebook, re-run the cell.
- ``"files"``: Jupyter's own ``<base_url>/files/<path>`` route, resolved in the browser against
  the page's Jupyter base URL. Works through a JupyterHub proxy (with Range: the default contents
  manager serves ``/files/`` with tornado's static handler), but only for stores *inside* the Jupyter
  server's root directory. The root is read from the server's runtime file (``jupyter_root``),
  or guessed from the kernel's working directory; pass ``files_root`` to be sure.
- ``embed=True``: downscaled previews inlined as data URIs (``kling_lab.views.preview``): the
  notebook travels anywhere, at the cost of tens of KB to a few MB per grid.

The static report uses relative paths from the report's own location (``RelativeSource``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol
from urllib.parse import quote

from kling_lab.store.run_store import RunStore
from kling_lab.views.video_server import media_server

SourceName = Literal["server", "files"]
JUPYTER_FILES = "jupyter-files"  # the front end prefixes "<jupyter base url>files/" to such URLs


class Source(Protocol):
    """Maps a local video (and its poster) to what the browser loads."""

    base: str  # "" = URLs are complete; JUPYTER_FILES = relative to Jupyter's /files/ route
    kind: str  # "server" | "files" | "embed" | "relative": lets the page explain a video that fails to load

    def video(self, path: Path) -> str: ...

    def poster(self, path: Path) -> str | None: ...


def locate(store: RunStore, video_path: str | None) -> Path | None:
    """The local video file of a run, or None when the run has none or the file is gone."""
    if not video_path:
        return None
    try:
        return store.video_file(video_path)
    except FileNotFoundError:
        return None


def poster_file(video: Path) -> Path | None:
    """A cached poster JPEG (middle frame) for ``video``; None if the file cannot be decoded."""
    from kling_lab.media.frames import poster  # PyAV loads only when a view needs a poster

    try:
        return poster(video, at=0.5, max_side=480)
    except Exception:  # noqa: BLE001 - an unreadable clip still gets a cell; the browser reports its own error
        return None


class ServerSource:
    """URLs of the kernel's loopback media server."""

    base = ""
    kind = "server"

    def video(self, path: Path) -> str:
        return media_server().url(path)

    def poster(self, path: Path) -> str | None:
        image = poster_file(path)
        return None if image is None else media_server().url(image)


class JupyterFilesSource:
    """Paths relative to the Jupyter server root, served by its ``/files/`` route."""

    base = JUPYTER_FILES
    kind = "files"

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).resolve() if root is not None else jupyter_root()

    def video(self, path: Path) -> str:
        rel = Path(os.path.relpath(path.resolve(), self.root))
        if rel.parts and rel.parts[0] == "..":
            raise ValueError(f"{path} is outside the Jupyter root {self.root}: use source='server' or embed=True")
        return quote(PurePosixPath(*rel.parts).as_posix())

    def poster(self, path: Path) -> str | None:
        image = poster_file(path)
        return None if image is None else self.video(image)


class EmbedSource:
    """Downscaled previews inlined as data URIs (no poster: the inlined clip shows its own frames)."""

    base = ""
    kind = "embed"

    def __init__(self, max_side: int = 240) -> None:
        self.max_side = max_side

    def video(self, path: Path) -> str:
        from kling_lab.views.preview import preview_data_uri

        return preview_data_uri(path, max_side=self.max_side)

    def poster(self, path: Path) -> str | None:
        return None


class RelativeSource:
    """Paths relative to a page's directory; with ``copy_dir``, the files are copied there first."""

    base = ""
    kind = "relative"

    def __init__(self, page_dir: Path, copy_dir: Path | None = None) -> None:
        self.page_dir, self.copy_dir = page_dir.resolve(), copy_dir

    def _place(self, path: Path) -> Path:
        if self.copy_dir is None:
            return path
        self.copy_dir.mkdir(parents=True, exist_ok=True)
        dest = self.copy_dir / path.name
        if not dest.exists() or dest.stat().st_size != path.stat().st_size:
            shutil.copyfile(path, dest)
        return dest

    def video(self, path: Path) -> str:
        rel = Path(os.path.relpath(self._place(path).resolve(), self.page_dir))
        return quote(PurePosixPath(*rel.parts).as_posix())

    def poster(self, path: Path) -> str | None:
        image = poster_file(path)
        return None if image is None else self.video(image)


def _running_servers() -> list[dict[str, Any]]:
    """The ``jpserver-<pid>.json`` files of the Jupyter servers running on this machine."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:  # no Jupyter here: nothing to find
        return []
    servers = []
    for path in Path(jupyter_runtime_dir()).glob("jpserver-*.json"):
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and info.get("root_dir"):
            servers.append(info)
    return servers


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def jupyter_root() -> Path:
    """The Jupyter server's root directory, as well as the kernel can tell.

    1. The runtime file of the server that started this kernel (``jpserver-<JPY_PARENT_PID>.json``,
       whose ``root_dir`` is exact), else of the one running server whose root holds the notebook.
    2. ``JPY_SESSION_NAME`` relative to the root (older servers): the cwd minus the notebook's folder.
    3. The kernel's working directory.

    jupyter_server 2.x sets ``JPY_SESSION_NAME`` to the notebook's *absolute* path, which alone does
    not tell where the root is: hence the runtime files first.
    """
    cwd = Path.cwd()
    session = os.environ.get("JPY_SESSION_NAME", "")
    notebook = Path(session) if session and os.path.isabs(session) else cwd / (session or "_")
    servers = _running_servers()
    parent = os.environ.get("JPY_PARENT_PID", "")
    for info in servers:
        if str(info.get("pid")) == parent:
            return Path(info["root_dir"]).resolve()
    holding = [r for r in (Path(i["root_dir"]).resolve() for i in servers) if _inside(notebook.resolve(), r)]
    if holding:
        return max(holding, key=lambda r: len(r.parts))
    if session and not os.path.isabs(session):
        depth = len(PurePosixPath(session).parent.parts)
        if depth <= len(cwd.parents):
            return cwd.parents[depth - 1] if depth else cwd
    return cwd


def make_source(
    source: SourceName | Source = "server", *, embed: bool = False, files_root: str | os.PathLike[str] | None = None
) -> Source:
    """The Source for ``compare``/``ab`` options."""
    if embed:
        return EmbedSource()
    if source == "server":
        return ServerSource()
    if source == "files":
        return JupyterFilesSource(files_root)
    if isinstance(source, str):
        raise ValueError(f"source must be 'server' or 'files' (or embed=True); got {source!r}")
    return source
