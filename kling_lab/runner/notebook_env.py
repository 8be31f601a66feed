"""Which notebook a run comes from: the environment :func:`kling_lab.notebooks.run_grid` gives its kernels.

``run_grid`` starts each notebook's kernel with ``KLING_LAB_NOTEBOOK`` (the executed notebook's
absolute path), ``KLING_LAB_PARAMS`` (its parameters as JSON) and, when the grid has a store,
``KLING_LAB_STORE``. Every ``kling_lab.run`` inside that kernel then tags its rows with them
(``notebook`` and ``params_json`` columns) without the template passing anything. The
environment, unlike papermill parameters, is not recorded in the executed notebook.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

NOTEBOOK_ENV = "KLING_LAB_NOTEBOOK"
PARAMS_ENV = "KLING_LAB_PARAMS"


def kernel_env(notebook: str | os.PathLike[str], params: Mapping[str, Any], store: str | None = None) -> dict[str, str]:
    """The variables ``run_grid`` adds to the environment of the kernel that executes ``notebook``."""
    from kling_lab.store.run_store import STORE_ENV

    env = {NOTEBOOK_ENV: os.fspath(notebook), PARAMS_ENV: json.dumps(dict(params), sort_keys=True, default=str)}
    if store is not None:
        env[STORE_ENV] = store
    return env


def notebook_params() -> dict[str, Any]:
    """The parameters of the notebook this process runs for (empty outside ``run_grid``)."""
    text = os.environ.get(PARAMS_ENV)
    if not text:
        return {}
    try:
        params = json.loads(text)
    except ValueError:
        raise ValueError(f"${PARAMS_ENV} is not JSON: {text[:80]!r}") from None
    if not isinstance(params, dict):
        raise ValueError(f"${PARAMS_ENV} must be a JSON object, got {type(params).__name__}")
    return params


def with_notebook_defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` for a run with ``notebook`` and ``tags`` defaulted from the environment.

    An explicit ``notebook=`` wins; explicit ``tags`` are merged over the notebook's parameters.
    """
    merged = dict(options)
    notebook = os.environ.get(NOTEBOOK_ENV)
    if notebook and not merged.get("notebook"):
        merged["notebook"] = notebook
    params = notebook_params()
    if params:
        merged["tags"] = {**params, **dict(merged.get("tags") or {})}
    return merged


__all__ = ["NOTEBOOK_ENV", "PARAMS_ENV", "kernel_env", "notebook_params", "with_notebook_defaults"]
