"""The functions a notebook calls: ``run``, ``resume`` (sync) and their ``*_async`` twins.

The sync forms work in a plain script and inside a Jupyter kernel whose event loop is
already running (see :mod:`kling_lab.syncrun`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kling_lab.backends import Backend, get_backend
from kling_lab.errors import BackendConfigError, InvalidInput
from kling_lab.media.hook import default_media_hook
from kling_lab.runner.notebook_env import with_notebook_defaults
from kling_lab.runner.options import RunOptions, RunResult
from kling_lab.runner.orchestrator import Runner
from kling_lab.runner.plan import Plan
from kling_lab.store.run_store import RunStore
from kling_lab.sweep import Sweep
from kling_lab.util.loop_thread import run_sync

if TYPE_CHECKING:
    from kling_lab.runner.race import RaceResult

FAL_DEFAULT_CAP_USD = 25.0

SweepLike = Sweep | str | os.PathLike[str] | Iterable[Mapping[str, Any]]


def as_sweep(sweep: SweepLike) -> Sweep:
    """A Sweep, a path to a sweep YAML file, or a list of request mappings."""
    if isinstance(sweep, Sweep):
        return sweep
    if isinstance(sweep, (str, os.PathLike)):
        return Sweep.from_yaml(Path(sweep))
    return Sweep.from_list(list(sweep))


def make_runner(
    backend: str | Backend | None = "emulator",
    store: RunStore | str | os.PathLike[str] | None = None,
    *,
    backend_options: Mapping[str, Any] | None = None,
    factory: Callable[[Backend, RunStore, RunOptions], Runner] = Runner,
    **options: Any,
) -> Runner:
    """A Runner with the backend resolved by name and the cap rules applied.

    The real ``fal`` backend always runs under a cap: ``max_cost_usd`` defaults to $25.
    ``factory`` builds the runner (a judge runner for judge calls).
    """
    name = backend if isinstance(backend, str) or backend is None else getattr(backend, "name", "custom")
    if name == "fal" and options.get("max_cost_usd") is None:
        options["max_cost_usd"] = FAL_DEFAULT_CAP_USD
    options.setdefault("media_hook", default_media_hook)
    options = with_notebook_defaults(options)  # tags from a run_grid notebook, if any
    run_options = RunOptions(**options)  # validate before any backend starts
    store = RunStore.coerce(store).require_writable()  # so is the store
    resolved = get_backend(backend, **dict(backend_options or {}))
    return factory(resolved, store, run_options)


async def execute(
    runner: Runner, sweep: Sweep | None = None, *, announce: bool = False, request_ids: Sequence[str] = ()
) -> RunResult:
    """Run ``sweep`` with ``runner`` (or, without a sweep, resume its journal), then close the backend.

    Before the first submit the plan is printed to stderr (what comes from the cache, what is
    left to pay, the cap): always for the real fal backend, for any backend with ``announce``."""

    def show(plan: Plan) -> None:
        if announce or runner.backend.name == "fal":
            line = plan.describe(runner.backend.name, runner.options.concurrency, runner.options.max_cost_usd)
            print(line, file=sys.stderr)

    try:
        if sweep is None:
            return await runner.resume(request_ids)
        return await runner.run(sweep, on_plan=show)
    finally:
        await runner.backend.aclose()


async def run_async(
    sweep: SweepLike,
    *,
    strategy: str = "grid",
    backend: str | Backend | None = "emulator",
    store: RunStore | str | os.PathLike[str] | None = None,
    backend_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> RunResult | RaceResult:
    """Run a sweep and log every request; see :func:`run` for the options."""
    from kling_lab.runner.race import RACE_OPTIONS, race_async

    sweep = as_sweep(sweep)  # bad input fails here, before any backend starts
    sweep.require_prices()
    if strategy == "race":

        def new_runner(backend: str | Backend | None, **opts: Any) -> Runner:
            return make_runner(backend, store, backend_options=backend_options, **opts)

        return await race_async(sweep, new_runner, backend=backend, **options)
    if strategy != "grid":
        raise InvalidInput(f"strategy must be 'grid' (every request) or 'race' (adaptive repeats); got {strategy!r}")
    misplaced = [k for k in options if k in RACE_OPTIONS]
    if misplaced:
        raise InvalidInput(f"{misplaced[0]} is an option of a race: pass strategy='race' with it")
    return await execute(make_runner(backend, store, backend_options=backend_options, **options), sweep)


def run(
    sweep: SweepLike,
    *,
    strategy: str = "grid",
    backend: str | Backend | None = "emulator",
    store: RunStore | str | os.PathLike[str] | None = None,
    backend_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> RunResult | RaceResult:
    """Run a sweep (a Sweep, a YAML path or a list of request dicts) and return its result.

    ``backend``: ``"emulator"`` (default, free, placeholder videos) or ``"fal"`` (real,
    needs FAL_KEY, capped at ``max_cost_usd``, default $25). Options: ``concurrency``
    (default 4), ``max_cost_usd``, ``force`` (ignore the cache), ``request_timeout_s``,
    ``tags`` (dict stored as ``params_json``), ``notebook``, ``progress``.

    ``strategy="race"`` runs the sweep as a race (:mod:`kling_lab.runner.race`) and returns a
    ``RaceResult``: ``metric`` (a numeric run-log column such as ``"qc_motion"``, or a function of a
    row), ``higher_is_better`` (required), ``confidence`` (default 0.95), ``min_difference``,
    ``initial_repeats``, ``max_repeats``, ``max_rounds``; ``max_cost_usd`` caps the race's clips.
    """
    return run_sync(
        lambda: run_async(
            sweep, strategy=strategy, backend=backend, store=store, backend_options=backend_options, **options
        )
    )


async def resume_async(
    *,
    backend: str | Backend | None = "emulator",
    store: RunStore | str | os.PathLike[str] | None = None,
    backend_options: Mapping[str, Any] | None = None,
    request_ids: Sequence[str] = (),
    **options: Any,
) -> RunResult:
    """Collect every journaled request of ``backend`` that has no row yet (never re-submits).

    ``request_ids``: also these (rescue tokens a run printed when its journal could not be
    written, or ids fal's platform API lists)."""
    runner = make_runner(backend, store, backend_options=backend_options, **options)
    return await execute(runner, request_ids=request_ids)


def resume(
    *,
    backend: str | Backend | None = "emulator",
    store: RunStore | str | os.PathLike[str] | None = None,
    backend_options: Mapping[str, Any] | None = None,
    request_ids: Sequence[str] = (),
    **options: Any,
) -> RunResult:
    """Sync form of :func:`resume_async`."""
    return run_sync(
        lambda: resume_async(
            backend=backend, store=store, backend_options=backend_options, request_ids=request_ids, **options
        )
    )


__all__ = ["BackendConfigError", "as_sweep", "execute", "make_runner", "resume", "resume_async", "run", "run_async"]
