"""Keep secrets out of executed notebooks.

papermill writes a notebook's parameters into the executed notebook (an injected cell and its
metadata), and anything a cell prints is saved with it. Secrets such as ``FAL_KEY`` reach a
kernel through its environment only. This module refuses parameters that could carry a secret
(:func:`check_parameters`) and searches a written file for the values of secret-looking
environment variables (:func:`scrub_secrets`), redacting them in place.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kling_lab.errors import InvalidInput, KlingLabError

SECRET_NAME = re.compile(r"key|token|secret|passw|credential", re.IGNORECASE)
FAL_KEY_SHAPE = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}:[0-9a-f]{32}", re.IGNORECASE)
MIN_SECRET_LEN = 8  # shorter environment values ("1", "true") are not searched for
REDACTED = "[REDACTED by kling_lab]"


class SecretLeakError(KlingLabError):
    """A secret (e.g. ``FAL_KEY``) was found in an executed notebook; the file has been redacted."""


def secret_values() -> dict[str, str]:
    """Environment variables whose name looks secret (``FAL_KEY``, ``*_TOKEN``, ...) → their values."""
    found = {
        name: value for name, value in os.environ.items() if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LEN
    }
    key_id, key_secret = os.environ.get("FAL_KEY_ID"), os.environ.get("FAL_KEY_SECRET")
    if key_id and key_secret:
        found["FAL_KEY_ID:FAL_KEY_SECRET"] = f"{key_id}:{key_secret}"
    return found


def check_parameters(params: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidInput` for a parameter whose name or value looks like a secret."""
    secrets = secret_values()
    for name, value in params.items():
        if SECRET_NAME.search(name):
            raise InvalidInput(
                f"parameter {name!r}: names like key/token/secret are refused, because papermill "
                "writes parameters into the executed notebook. Secrets such as FAL_KEY reach the "
                "kernel through its environment; rename the parameter if it is not a secret."
            )
        for text in _strings(value):
            leaked = [env for env, secret in secrets.items() if secret in text]
            if leaked or FAL_KEY_SHAPE.search(text):
                what = f"the value of ${leaked[0]}" if leaked else "something shaped like a fal key"
                raise InvalidInput(
                    f"parameter {name!r} holds {what}; papermill would write it into the "
                    "executed notebook. Leave secrets in the environment."
                )


def _strings(value: Any) -> Iterator[str]:
    """Every string inside ``value`` (nested lists, tuples, sets and mappings, keys included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _strings(v)


def scrub_secrets(path: str | os.PathLike[str]) -> list[str]:
    """Redact every secret environment value found in the file at ``path``; return their variable names."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    found = []
    for name, secret in secret_values().items():
        forms = {secret, json.dumps(secret)[1:-1]}  # raw, and as escaped inside the notebook's JSON
        if any(form in text for form in forms):
            found.append(name)
            for form in forms:
                text = text.replace(form, REDACTED)
    if found:
        path.write_text(text, encoding="utf-8")
    return found


__all__ = ["REDACTED", "SecretLeakError", "check_parameters", "scrub_secrets", "secret_values"]
