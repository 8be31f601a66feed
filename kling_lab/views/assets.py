"""The front-end files of the views (``*.js``, ``*.css``, ``*.html`` beside this module).

The JavaScript is plain ES module files; a view's module is the concatenation of the files it
needs in dependency order (``synced_playback.js`` first), so the widgets and the static report run the very
same code without a bundler. Each file exports its names; only the entry file has a default export.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

HERE = Path(__file__).parent


@cache
def text(name: str) -> str:
    """The contents of one front-end file."""
    return (HERE / name).read_text(encoding="utf-8")


def bundle(*names: str) -> str:
    """One ES module made of the named ``.js`` files, in order."""
    return "\n".join(f"// ---- kling_lab/views/{name} ----\n{text(name)}" for name in names)


def stylesheet() -> str:
    """The shared CSS of every view."""
    return text("views.css")
