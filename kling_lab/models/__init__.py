"""The model registry: every video model kling_lab can send a request to, by alias.

The built-in families (``kling``, ``veo``, ``seedance``, ``hailuo``) register themselves exactly as an
outside plugin does: a function returning :class:`Model` s. A notebook adds its own with
``register_model(Model(...))``; an installed package through the ``kling_lab.models`` entry point
group (the way backends are found, see :mod:`kling_lab.backends`)::

    # in the plugin's pyproject.toml
    [project.entry-points."kling_lab.models"]
    my-models = "my_plugin:models"      # a Model, a list of Models, or a function returning either

Pure: no I/O (entry points are read from installed package metadata on first look-up).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any

from kling_lab.errors import InvalidRequest
from kling_lab.models.base import CAPABILITIES, END_IMAGE, IMAGE, Endpoint, Model
from kling_lab.models.pricing import ByDuration, Flat, PerClip, PerSecond, PerVideoTokens, PriceRule, UserPrice
from kling_lab.models.request import ImageRef, ModelRequest, parse_request

ENTRY_POINT_GROUP = "kling_lab.models"
DEFAULT_MODEL = "kling-2.0-master"
BUILTIN_FAMILIES = (
    "kling_lab.models.kling:models",
    "kling_lab.models.veo:models",
    "kling_lab.models.seedance:models",
    "kling_lab.models.hailuo:models",
)

_REGISTRY: dict[str, Model] = {}
_BY_ENDPOINT: dict[str, Model] = {}
_LOADED = False
_LOCK = threading.RLock()  # the emulator's thread and the caller's may look a model up first at once


def register_model(model: Model, *, replace: bool = True) -> Model:
    """Make ``model`` known by its alias (and its endpoints known by id); returns it."""
    if not isinstance(model, Model):
        raise TypeError(f"register_model takes a Model; got {type(model).__name__}")
    if not replace and model.alias in _REGISTRY:
        raise ValueError(f"a model {model.alias!r} is already registered")
    with _LOCK:
        old = _REGISTRY.get(model.alias)
        if old is not None:
            for endpoint in old.endpoints:
                _BY_ENDPOINT.pop(endpoint.id, None)
        _REGISTRY[model.alias] = model
        for endpoint in model.endpoints:
            _BY_ENDPOINT[endpoint.id] = model
    return model


def _as_models(found: Any) -> list[Model]:
    if callable(found) and not isinstance(found, Model):
        found = found()
    if isinstance(found, Model):
        return [found]
    return list(found)


def _load(target: str | Callable[[], Any]) -> None:
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    for model in _as_models(target):
        _REGISTRY.setdefault(model.alias, model)  # one registered in code wins over a plugin's
        for endpoint in _REGISTRY[model.alias].endpoints:
            _BY_ENDPOINT.setdefault(endpoint.id, _REGISTRY[model.alias])


def _ensure_loaded() -> None:
    """Built-in families, then installed plugins (once; a plugin that fails to load is an error naming it)."""
    global _LOADED
    if _LOADED:
        return
    with _LOCK:
        if _LOADED:
            return
        for family in BUILTIN_FAMILIES:
            _load(family)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                _load(ep.load())
            except Exception as exc:
                raise InvalidRequest(f"model plugin {ep.name!r} ({ep.value}) could not be loaded: {exc}") from exc
        _LOADED = True


def models() -> list[Model]:
    """Every registered model, default first, then by family and alias."""
    _ensure_loaded()
    return sorted(_REGISTRY.values(), key=lambda m: (m.alias != DEFAULT_MODEL, m.family != "kling", m.family, m.alias))


def list_models() -> list[Model]:
    """Every registered model (``kl.list_models()``; the same as :func:`models`)."""
    return models()


def model_names() -> list[str]:
    return [m.alias for m in models()]


def get_model(alias: str | Model | None = None) -> Model:
    """A model by alias (default ``kling-2.0-master``); an unknown alias is an input error listing the known ones."""
    if isinstance(alias, Model):
        return alias
    _ensure_loaded()
    name = DEFAULT_MODEL if alias is None else alias
    if not isinstance(name, str) or name not in _REGISTRY:
        raise InvalidRequest(f"model: unknown model {name!r}; known models: {', '.join(model_names())}", field="model")
    return _REGISTRY[name]


def model_for_endpoint(endpoint_id: str) -> Model | None:
    """The model serving ``endpoint_id`` (None when no registered model does)."""
    _ensure_loaded()
    return _BY_ENDPOINT.get(endpoint_id)


def all_parameters() -> list[str]:
    """Every input some registered model takes (what a sweep file may name)."""
    seen: dict[str, None] = {}
    for model in models():
        seen.update(dict.fromkeys(model.parameters()))
    return list(seen)


def endpoints() -> Iterable[tuple[Model, Endpoint]]:
    for model in models():
        for endpoint in model.endpoints:
            yield model, endpoint


__all__ = [
    "CAPABILITIES",
    "DEFAULT_MODEL",
    "END_IMAGE",
    "ENTRY_POINT_GROUP",
    "IMAGE",
    "ByDuration",
    "Endpoint",
    "Flat",
    "ImageRef",
    "Model",
    "ModelRequest",
    "PerClip",
    "PerSecond",
    "PerVideoTokens",
    "PriceRule",
    "UserPrice",
    "all_parameters",
    "endpoints",
    "get_model",
    "list_models",
    "model_for_endpoint",
    "model_names",
    "models",
    "parse_request",
    "register_model",
]
