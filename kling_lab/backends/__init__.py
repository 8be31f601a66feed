"""Where kling_lab talks to a queue: the real fal client and the local emulator.

Backends are looked up by name in a small registry; the built-in ones register exactly
as an outside plugin would (``register_backend("name", factory)``)::

    from kling_lab.backends import register_backend
    register_backend("my-proxy", lambda **options: MyProxyBackend(**options))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kling_lab.backends.base import Backend, Completed, InProgress, Queued, Status
from kling_lab.errors import BackendConfigError

BackendFactory = Callable[..., Backend]
_REGISTRY: dict[str, BackendFactory] = {}
DEFAULT_BACKEND = "emulator"


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``get_backend(name, **options)`` call ``factory(**options)``."""
    _REGISTRY[name] = factory


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def get_backend(name: str | Backend | None = None, **options: Any) -> Backend:
    """A backend by name (default: the emulator); a Backend object is returned as is."""
    if name is None:
        name = DEFAULT_BACKEND
    if not isinstance(name, str):
        return name
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise BackendConfigError(f"unknown backend {name!r}; choose one of: {', '.join(backend_names())}") from None
    return factory(**options)


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
