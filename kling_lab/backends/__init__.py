"""Where kling_lab talks to a queue: the real fal client and the local emulator.

Backends are looked up by name in a small registry. A notebook registers one with
``register_backend("name", factory)``; an installed package registers one through the
``kling_lab.backends`` entry point group (the way simonw/llm finds its plugins), which also makes
it a ``--backend`` choice on the command line::

    # in the plugin's pyproject.toml
    [project.entry-points."kling_lab.backends"]
    my-proxy = "my_plugin:make_backend"      # a factory: make_backend(**options) -> Backend

Entry points are read when a name is first looked up, and a plugin is imported only when its
backend is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from kling_lab.backends.base import Backend, Completed, InProgress, Queued, Status
from kling_lab.errors import BackendConfigError

BackendFactory = Callable[..., Backend]
ENTRY_POINT_GROUP = "kling_lab.backends"
_REGISTRY: dict[str, BackendFactory] = {}
_PLUGINS: dict[str, EntryPoint] | None = None
DEFAULT_BACKEND = "emulator"


def _plugins() -> dict[str, EntryPoint]:
    """The installed packages' backends (read once; a name registered in code wins)."""
    global _PLUGINS
    if _PLUGINS is None:
        _PLUGINS = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _PLUGINS


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``get_backend(name, **options)`` call ``factory(**options)``."""
    _REGISTRY[name] = factory


def backend_names() -> list[str]:
    """Every backend that can be named: registered in code or by an installed package."""
    return sorted({*_REGISTRY, *_plugins()})


def _factory(name: str) -> BackendFactory:
    if name in _REGISTRY:
        return _REGISTRY[name]
    ep = _plugins().get(name)
    if ep is None:
        raise BackendConfigError(f"unknown backend {name!r}; choose one of: {', '.join(backend_names())}")
    try:
        factory = ep.load()
    except Exception as exc:
        raise BackendConfigError(f"backend {name!r} (from {ep.value}) could not be loaded: {exc}") from exc
    _REGISTRY[name] = factory
    return factory


def get_backend(name: str | Backend | None = None, **options: Any) -> Backend:
    """A backend by name (default: the emulator); a Backend object is returned as is."""
    if name is None:
        name = DEFAULT_BACKEND
    if not isinstance(name, str):
        return name
    return _factory(name)(**options)


def _fal(**options: Any) -> Backend:
    from kling_lab.backends.fal import FalBackend

    return FalBackend(**options)


def _emulator(**options: Any) -> Backend:
    from kling_lab.backends.emulator.backend import EmulatorBackend

    return EmulatorBackend(**options)


register_backend("fal", _fal)
register_backend("emulator", _emulator)

__all__ = [
    "DEFAULT_BACKEND",
    "Backend",
    "BackendFactory",
    "Completed",
    "InProgress",
    "Queued",
    "Status",
    "backend_names",
    "get_backend",
    "register_backend",
]
