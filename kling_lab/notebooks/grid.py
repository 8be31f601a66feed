"""Notebooks that run themselves: a papermill template executed once per parameter set.

::

    summary = run_grid("notebooks/sweep.ipynb", {"cfg_values": [[0.25, 0.75], [0.1, 0.9]]},
                       "experiments/cfg", store="kling_runs")

Each parameter set gives one executed notebook ``<out_dir>/<template>-<slug>-<hash>.ipynb``. Its
kernel is started with the notebook's path, its parameters and the store in its environment (see
:mod:`kling_lab.nbcontext`), so every run it makes is tagged (``notebook``, ``params_json``) and
lands in the grid's one store, whatever the template does. The environment, unlike papermill
parameters, is not written into the notebook. A notebook that raises is reported and the grid goes
on; its output notebook is kept, with the traceback.

Secrets (see :mod:`kling_lab.leaks`): parameters that look like a secret are refused before anything
runs, and every executed notebook is searched for the values of secret environment variables
(``FAL_KEY``, ...) afterwards: a hit is redacted in place and raises :class:`SecretLeakError`.

The templates in ``notebooks/`` hold no logic of their own; besides the public API they call the
helpers of :mod:`kling_lab.notebooks.template_helpers`.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from kling_lab.errors import InvalidInput
from kling_lab.notebooks.leaks import SecretLeakError, check_parameters, scrub_secrets
from kling_lab.runner.notebook_env import kernel_env
from kling_lab.store.run_store import RunStore
from kling_lab.util.clock import check_timeout

GridLike = Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]] | str | os.PathLike[str] | None
StoreLike = RunStore | str | os.PathLike[str] | None

SUMMARY_COLUMNS = ["notebook", "parameters", "status", "error", "seconds", "runs", "usd"]


# -- the grid --------------------------------------------------------------------------------
def load_grid(grid: GridLike) -> list[dict[str, Any]]:
    """Parameter sets from a list of mappings, a mapping of lists (cartesian product) or a YAML file.

    In the mapping form every value is the list of values of that parameter: write ``[0.5]``
    for a single value and ``[[0.1, 0.9]]`` for a parameter whose one value is a list.
    ``None`` means one run with the template's defaults.
    """
    if grid is None:
        return [{}]
    if isinstance(grid, (str, os.PathLike)):
        return load_grid(_read_yaml(Path(grid)))
    if isinstance(grid, Mapping):
        for name, values in grid.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise InvalidInput(
                    f"grid.{name}: must be a non-empty list of values (write [{values!r}] for a single value)"
                )
        names = list(grid)
        sets = [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]
    elif isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)):
        sets = []
        for i, params in enumerate(grid):
            if not isinstance(params, Mapping):
                raise InvalidInput(f"grid[{i}]: must be a mapping of parameter names to values")
            sets.append(dict(params))
    else:
        raise InvalidInput(f"grid: expected a list of mappings, a mapping of lists or a YAML path; got {grid!r}")
    if not sets:
        raise InvalidInput("grid: no parameter sets")
    seen: dict[str, int] = {}
    for i, params in enumerate(sets):
        key = _canonical(params)
        if key in seen:
            raise InvalidInput(f"grid: parameter set #{i} repeats #{seen[key]} (both would write one notebook)")
        seen[key] = i
    return sets


def _read_yaml(path: Path) -> Any:
    import yaml

    from kling_lab.util.safe_yaml import YamlLimitError, load_yaml, yaml_error_line

    if not path.is_file():
        raise InvalidInput(f"{path}: no such grid file")
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML ({yaml_error_line(exc)})") from None
    except YamlLimitError as exc:
        raise InvalidInput(f"{path}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read the grid file ({exc})") from None


def _canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, default=str)


def notebook_name(stem: str, params: Mapping[str, Any], shown: Sequence[str] | None = None) -> str:
    """``<stem>-<slug of the shown parameters>-<hash of all of them>.ipynb`` (``<stem>.ipynb`` if none)."""
    if not params:
        return f"{stem}.ipynb"
    keys = sorted(shown if shown is not None else params)
    slug = "_".join(f"{k}-{_value_slug(params[k])}" for k in keys)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", slug).strip("-._")[:48].rstrip("-._")
    digest = hashlib.sha256(_canonical(params).encode()).hexdigest()[:6]
    return f"{stem}-{slug}-{digest}.ipynb" if slug else f"{stem}-{digest}.ipynb"


def _value_slug(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(_value_slug(v) for v in value)
    return str(value)


def _varying(sets: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """The parameter names whose values differ between sets (None for a single set: show all)."""
    if len(sets) < 2:
        return None
    names = sorted(set().union(*sets))
    return [n for n in names if len({_canonical({"v": s.get(n)}) for s in sets}) > 1]


# -- running ---------------------------------------------------------------------------------
def default_out_dir(template: str | os.PathLike[str], grid: GridLike = None) -> Path:
    """``experiments/<name>``: the grid file's name if the grid is a file, else the template's."""
    source = grid if isinstance(grid, (str, os.PathLike)) else template
    return Path("experiments") / Path(source).stem


def run_grid(
    template: str | os.PathLike[str],
    grid: GridLike = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    store: StoreLike = None,
    kernel_name: str = "python3",
    progress: bool = True,
    timeout_s: float | None = None,
    start_timeout_s: float = 60.0,
) -> pd.DataFrame:
    """Execute ``template`` once per parameter set of ``grid``; return (and save) a summary table.

    ``grid``: see :func:`load_grid`. ``out_dir`` (default :func:`default_out_dir`) receives one
    executed notebook per set plus ``<template>-summary.csv`` / ``.parquet``. ``store``: the store
    every notebook's runs go to (default ``$KLING_LAB_STORE`` or ``./kling_runs``). ``timeout_s``
    limits each cell. Summary columns: ``notebook``, ``parameters`` (JSON), ``status`` (``ok`` |
    ``failed``), ``error``, ``seconds``, ``runs`` and ``usd`` (the rows that notebook logged).
    """
    template = Path(template)
    if not template.is_file():
        raise InvalidInput(f"{template}: no such notebook")
    check_timeout(timeout_s, "timeout_s")
    check_timeout(start_timeout_s, "start_timeout_s")
    sets = load_grid(grid)
    for params in sets:
        check_parameters(params)
    _check_template_parameters(template, sets)
    location = _store_location(store)  # a store that cannot be used is refused before anything is written
    out = Path(out_dir) if out_dir is not None else default_out_dir(template, grid)
    out.mkdir(parents=True, exist_ok=True)
    shown = _varying(sets)

    records = []
    bar = _progress(len(sets), template.stem, progress)
    try:
        for params in sets:
            path = (out / notebook_name(template.stem, params, shown)).resolve()
            records.append(
                _execute(
                    template,
                    path,
                    params,
                    location,
                    kernel_name=kernel_name,
                    timeout_s=timeout_s,
                    start_timeout_s=start_timeout_s,
                )
            )
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=sum(r["status"] == "failed" for r in records))
    finally:
        if bar is not None:
            bar.close()
    summary = _summarise(records, RunStore(location))
    summary.to_csv(out / f"{template.stem}-summary.csv", index=False)
    summary.to_parquet(out / f"{template.stem}-summary.parquet", index=False)
    return summary


def _check_template_parameters(template: Path, sets: Sequence[Mapping[str, Any]]) -> None:
    import papermill

    declared = papermill.inspect_notebook(str(template))
    unknown = sorted(set().union(*sets) - set(declared))
    if unknown:
        names = ", ".join(declared) or "none: it has no cell tagged 'parameters'"
        raise InvalidInput(f"{template}: unknown parameter {unknown[0]!r}; the template's parameters: {names}")


def _store_location(store: StoreLike) -> str:
    """Where the kernels should write: an absolute directory (their cwd may differ) or the store's URL."""
    resolved = RunStore.coerce(store)
    return resolved.location if resolved.is_remote else str(Path(resolved.root).resolve())


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="notebook")


def _execute(
    template: Path,
    path: Path,
    params: Mapping[str, Any],
    store: str,
    *,
    kernel_name: str,
    timeout_s: float | None,
    start_timeout_s: float,
) -> dict[str, Any]:
    """Run one notebook; a failure inside it is recorded, a leaked secret raises."""
    import papermill
    from traitlets.config import Config

    manager = _kernel_manager_class()
    config = Config({manager.__name__: {"extra_env": kernel_env(path, params, store)}})
    started = datetime.now(UTC)
    clock = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(
            str(template),
            str(path),
            parameters=dict(params),
            kernel_name=kernel_name,
            progress_bar=False,
            start_timeout=start_timeout_s,
            execution_timeout=timeout_s,
            kernel_manager_class=manager,
            config=config,
        )
    except papermill.PapermillExecutionError as exc:
        error = f"cell {exc.cell_index}: {exc.ename}: {exc.evalue}"
    except Exception as exc:  # noqa: BLE001 - a kernel that would not start, a timeout, ...: next notebook
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - clock
    leaked = scrub_secrets(path) if path.is_file() else []
    if leaked:
        raise SecretLeakError(
            f"{path}: the value of ${leaked[0]} appeared in the executed notebook; it has been "
            "redacted there. Check the template for code that prints the environment."
        )
    return {
        "notebook": str(path),
        "parameters": _canonical(params),
        "status": "failed" if error else "ok",
        "error": error,
        "seconds": seconds,
        "started": started,
    }


@functools.cache
def _kernel_manager_class() -> type:
    """An AsyncKernelManager that adds ``extra_env`` to the kernel's environment (set through config)."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Dict

    class KlingLabKernelManager(AsyncKernelManager):
        extra_env = Dict(help="variables added to the kernel's environment").tag(config=True)

        async def start_kernel(self, *args: Any, **kw: Any) -> None:  # type: ignore[override]  # async in AsyncKernelManager
            kw["env"] = {**(kw.get("env") or os.environ), **self.extra_env}
            await super().start_kernel(*args, **kw)

    return KlingLabKernelManager


def _summarise(records: Sequence[Mapping[str, Any]], store: RunStore) -> pd.DataFrame:
    """The records plus, per notebook, the rows it logged since it started: count and USD."""
    runs = store.load(absolute_paths=False)
    counts, usd = [], []
    for record in records:
        mask = (runs["notebook"] == record["notebook"]).fillna(False) & (runs["logged_at"] >= record["started"])
        mine = runs[mask.astype(bool)]
        counts.append(len(mine))
        usd.append(round(float(mine["cost_usd"].fillna(0).sum()), 2))
    summary = pd.DataFrame([{k: r[k] for k in SUMMARY_COLUMNS[:5]} for r in records], columns=SUMMARY_COLUMNS[:5])
    summary["runs"] = pd.array(counts, dtype="int64")
    summary["usd"] = pd.array(usd, dtype="float64")
    return summary.astype({"notebook": "string", "parameters": "string", "status": "string", "error": "string"})


__all__ = ["SecretLeakError", "default_out_dir", "load_grid", "notebook_name", "run_grid"]
