"""Live results: a compare grid that fills in while a sweep runs.

Real clips take minutes, so the grid shows one cell per job of the sweep from the start: a
placeholder saying where the job is (planned, queued with its position, running, downloading,
failed with its reason), replaced by the clip as soon as its row is written, with the money
spent so far in the summary line.

- ``LiveGrid`` keeps one record per job and pushes the grid to its ``CompareWidget`` (at most
  every ``FLUSH_S``; cards whose data did not change keep playing). It is a run observer
  (``on_event`` takes the runner's ``JobEvent``), and ``poll()`` updates it from a store instead.
- ``run(sweep, show=True)`` (``kl.run``) starts the sweep in a background thread with a
  ``LiveGrid`` observer and returns a ``LiveRun`` handle at once: the notebook stays usable, the
  handle displays as the grid, ``result()`` waits for the ``RunResult``, ``cancel()`` stops the
  run the way Ctrl-C does (in-flight requests cancelled at fal and logged).
- ``watch(sweep, store=…)`` is the grid of a sweep running elsewhere (another notebook, the CLI):
  it polls the store's rows and journal every ``interval`` seconds until every job has a row.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from kling_lab.errors import InvalidInput
from kling_lab.runner.api import SweepLike, as_sweep, execute, make_runner
from kling_lab.runner.api import run as run_now
from kling_lab.runner.journal import Journal
from kling_lab.runner.options import RunResult
from kling_lab.runner.orchestrator import Runner
from kling_lab.store.run_store import RunStore
from kling_lab.store.schema import PARAM_COLUMNS, QC_COLUMNS
from kling_lab.sweep import Sweep
from kling_lab.util.loop_thread import LoopThread
from kling_lab.util.money import money_text
from kling_lab.views import values
from kling_lab.views.compare import CompareWidget
from kling_lab.views.grid import PENDING, SORT_FIRST, grid_spec, view_state
from kling_lab.views.sources import Source, SourceName, make_source

FLUSH_S = 0.25  # the widget is redrawn at most this often (and once more after the last event)
TERMINAL = frozenset({"ok", "failed", "cancelled", "skipped_budget", "cache_hit", "left_pending"})
WITH_ROW = frozenset({"ok", "failed", "cancelled", "skipped_budget", "cache_hit"})


def planned_record(sweep: Sweep, index: int) -> dict[str, Any]:
    """A pending record for item ``index`` of ``sweep`` (the columns a grid facets and filters by)."""
    item = sweep.items[index]
    return {
        **item.request.columns(),
        "run_id": None,
        "fingerprint": item.fingerprint,
        "sweep_id": sweep.sweep_id,
        "experiment": sweep.name,
        "sweep_index": item.index,
        "repeat": item.repeat,
        "status": PENDING,
        "live_state": "planned",
    }


def default_facets(sweep: Sweep) -> tuple[str | None, str | None]:
    """(rows, cols) for a sweep's grid: the parameters that vary, the one with more values as columns."""
    records = [planned_record(sweep, i) for i in range(len(sweep.items))]
    counts = {c: len(values.distinct(r.get(c) for r in records)) for c in PARAM_COLUMNS}
    varying = sorted((c for c in PARAM_COLUMNS if c != "repeat" and counts[c] > 1), key=lambda c: -counts[c])
    if counts["repeat"] > 1:
        varying.append("repeat")
    cols = varying[0] if varying else None
    rows = varying[1] if len(varying) > 1 else None
    return rows, cols


class LiveGrid:
    """One record per job of ``sweep``, pushed to ``widget`` as the jobs move on."""

    def __init__(
        self,
        sweep: Sweep,
        *,
        store: RunStore,
        backend: str = "emulator",
        rows: str | None = None,
        cols: str | None = None,
        source: SourceName | Source = "server",
        metric: str | None = "qc_motion",
        tolerance: float = 0.15,
    ) -> None:
        if rows is None and cols is None:
            rows, cols = default_facets(sweep)
        facets = [c for c in (rows, cols) if c]
        unknown = [c for c in facets if c not in PARAM_COLUMNS]
        if unknown:
            raise InvalidInput(f"unknown column(s) {unknown} for a live grid; try one of {PARAM_COLUMNS}")
        self.sweep, self.store, self.backend = sweep, store, backend
        self.rows, self.cols, self.facets, self.metric = rows, cols, facets, metric
        self.source = make_source(source)
        self.records = {item.fingerprint: planned_record(sweep, i) for i, item in enumerate(sweep.items)}
        self.finished = False
        self.error: str | None = None
        self._lock = threading.Lock()
        self._last_flush = 0.0
        self._timer: threading.Timer | None = None
        self.poll_thread: threading.Thread | None = None
        self.widget = CompareWidget(**view_state(self._spec(), tolerance=tolerance))

    # -- updates -------------------------------------------------------------------------------
    def on_event(self, event: Any) -> None:
        """Take one ``JobEvent`` of the runner (called on the runner's loop thread)."""
        with self._lock:
            record = self.records.get(event.fingerprint)
            if record is None:
                return
            if event.state in WITH_ROW and event.row is not None:
                self.records[event.fingerprint] = {str(k): values.py(v) for k, v in event.row.items()}
            elif event.state == "cancelled":
                record.update(status="cancelled", error="cancelled before it was submitted")
            else:
                record.update(
                    live_state=event.state,
                    live_queue_position=event.queue_position,
                    live_message=event.message or "",
                )
        self._changed(urgent=event.state in TERMINAL)

    def apply_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Take terminal rows read from the store (the newest row of a fingerprint wins)."""
        with self._lock:
            for row in rows:
                fingerprint = row.get("fingerprint")
                if fingerprint in self.records:
                    self.records[fingerprint] = {str(k): values.py(v) for k, v in row.items()}
        self._changed(urgent=True)

    def mark(self, fingerprints: Iterable[str], state: str, message: str = "") -> None:
        """Set the live state of jobs that have no row yet (e.g. journaled: at fal)."""
        with self._lock:
            for fingerprint in fingerprints:
                record = self.records.get(fingerprint)
                if record is not None and record.get("status") == PENDING:
                    record.update(live_state=state, live_message=message)
        self._changed(urgent=False)

    def finish(self, error: str | None = None) -> None:
        """The run ended (``error``: why it stopped early): show the final state now."""
        with self._lock:
            self.finished, self.error = True, error
        self._changed(urgent=True)

    # -- state ---------------------------------------------------------------------------------
    @property
    def spent_usd(self) -> float:
        """What the rows so far cost (fal prices; $0 for failures and cache hits)."""
        return round(sum(r.get("cost_usd") or 0.0 for r in self.records.values() if r.get("status") != PENDING), 2)

    @property
    def done(self) -> int:
        return sum(1 for r in self.records.values() if r.get("status") != PENDING)

    def summary(self) -> str:
        """``7 of 12 done · 3 running · 2 queued · 7 ok · $9.80 at fal prices (…) so far``."""
        states: dict[str, int] = {}
        statuses: dict[str, int] = {}
        for record in self.records.values():
            if record.get("status") == PENDING:
                states[record.get("live_state") or "planned"] = states.get(record.get("live_state") or "planned", 0) + 1
            else:
                statuses[record["status"]] = statuses.get(record["status"], 0) + 1
        parts = [f"{self.done} of {len(self.records)} done"]
        parts += [f"{n} {state.replace('_', ' ')}" for state, n in states.items()]
        parts += [f"{n} {status}" for status, n in statuses.items()]
        money = money_text(self.spent_usd, self.backend) + ("" if self.finished else " so far")
        head = "" if self.finished else "running: "
        tail = f" · stopped: {self.error}" if self.error else ""
        return head + " · ".join([*parts, money]) + tail

    def _spec(self) -> dict[str, Any]:
        sortable = [c for c in (*QC_COLUMNS, *SORT_FIRST)]
        spec = grid_spec(
            [dict(r) for r in self.records.values()],
            self.rows,
            self.cols,
            facets=self.facets,
            sortable=sortable,
            source=self.source,
            store=self.store,
            metric=self.metric,
        )
        spec["summary"] = self.summary()
        return spec

    def _changed(self, *, urgent: bool) -> None:
        now = time.monotonic()
        if urgent or self.finished or now - self._last_flush >= FLUSH_S:
            self.flush()
        elif self._timer is None:  # a trailing redraw, so the last change is never lost
            self._timer = threading.Timer(FLUSH_S, self.flush)
            self._timer.daemon = True
            self._timer.start()

    def flush(self) -> None:
        """Push the current records to the widget now."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._last_flush = time.monotonic()
            spec = self._spec()
        self.widget.grid = spec

    # -- polling a store -----------------------------------------------------------------------
    def poll(self) -> bool:
        """Read the store's rows and journal for this sweep once; True when every job has a row."""
        df = self.store.load(sweep_id=self.sweep.sweep_id)
        if len(df):
            self.apply_rows(df.sort_values("logged_at", kind="stable").to_dict("records"))
        pending = Journal(self.store.journal_dir).pending().values()
        at_fal = [p.fingerprint for p in pending if p.fingerprint in self.records]
        if at_fal:
            self.mark(at_fal, "submitted")  # journaled: at fal, queued or running (the journal cannot tell)
        if self.done == len(self.records):
            self.finish()
            return True
        return False


class LiveRun:
    """A sweep running in the background; displays as its live grid.

    ``widget``: the grid; ``result(timeout)``: the ``RunResult`` (after ``cancel()``, the
    interrupted one); ``done()``; ``cancel()``: stop it like Ctrl-C (in-flight requests are
    cancelled at fal and logged ``cancelled``)."""

    def __init__(self, sweep: Sweep, grid: LiveGrid, runner: Runner) -> None:
        self.sweep, self.grid, self.runner = sweep, grid, runner
        self._thread = LoopThread(f"kling-lab-live-{sweep.name}").start()
        self._task: asyncio.Task[Any] | None = None
        self._started = threading.Event()

        async def main() -> RunResult:
            self._task = asyncio.current_task()
            self._started.set()
            try:
                return await execute(runner, sweep)
            except asyncio.CancelledError:
                if runner.last_result is not None:  # cancelled: the rows it wrote, marked interrupted
                    return runner.last_result
                raise

        self._future = self._thread.submit(main())
        self._future.add_done_callback(self._ended)

    @property
    def widget(self) -> CompareWidget:
        return self.grid.widget

    def _ended(self, future: Any) -> None:
        error = None
        if future.cancelled():
            error = "cancelled"
        elif future.exception() is not None:
            error = str(future.exception()) or type(future.exception()).__name__
        elif future.result().interrupted:
            error = "cancelled"
        self.grid.finish(error)
        threading.Thread(target=self._thread.stop, daemon=True).start()  # not from the loop's own thread

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: float | None = None) -> RunResult:
        """Wait for the run and return its ``RunResult`` (raises what the run raised)."""
        return self._future.result(timeout)

    def cancel(self) -> None:
        """Stop the run: in-flight requests are cancelled at fal and logged; ``result()`` says so."""
        self._started.wait(10)
        if self._task is not None:
            self._thread.loop.call_soon_threadsafe(self._task.cancel)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"<LiveRun {self.sweep.name!r}: {self.grid.summary()}>"


def run(
    sweep: SweepLike,
    *,
    show: bool = False,
    backend: Any = "emulator",
    store: RunStore | str | os.PathLike[str] | None = None,
    backend_options: Mapping[str, Any] | None = None,
    rows: str | None = None,
    cols: str | None = None,
    **options: Any,
) -> Any:
    """Run a sweep; see :func:`kling_lab.runner.api.run` for the options (``strategy="race"`` too).

    ``show=True``: return a :class:`LiveRun` at once and run in the background, so the notebook
    stays usable; as a cell's last line it shows the grid filling in (``rows``/``cols`` facet it;
    default: the inputs that vary). Bad input still fails here, before anything starts.
    """
    if not show:
        return run_now(sweep, backend=backend, store=store, backend_options=backend_options, **options)
    if options.get("strategy", "grid") != "grid":
        raise InvalidInput("show=True shows a fixed grid; a race (strategy='race') runs without it")
    options.pop("strategy", None)
    sweep = as_sweep(sweep)
    resolved = RunStore.coerce(store)
    name = backend if isinstance(backend, str) else getattr(backend, "name", "custom")
    grid = LiveGrid(sweep, store=resolved, backend=name or "emulator", rows=rows, cols=cols)
    observers = [grid, *options.pop("observers", ())]
    options.setdefault("progress", False)
    runner = make_runner(backend, resolved, backend_options=backend_options, observers=observers, **options)
    grid.backend = runner.backend.name
    return LiveRun(sweep, grid, runner)


def watch(
    sweep: SweepLike,
    *,
    store: RunStore | str | os.PathLike[str] | None = None,
    rows: str | None = None,
    cols: str | None = None,
    backend: str = "emulator",
    interval: float = 1.0,
    timeout: float | None = None,
) -> CompareWidget:
    """A grid of ``sweep`` running elsewhere (another notebook, ``kling-lab run``), filled in by
    polling ``store`` every ``interval`` seconds until every job has a row (or ``timeout``)."""
    sweep = as_sweep(sweep)
    grid = LiveGrid(sweep, store=RunStore.coerce(store), backend=backend, rows=rows, cols=cols)
    deadline = None if timeout is None else time.monotonic() + timeout
    stop = threading.Event()
    grid.widget._stop_live = stop.set

    def loop() -> None:
        while not stop.is_set():
            try:
                if grid.poll():
                    return
            except Exception as exc:  # noqa: BLE001 - a watcher shows what went wrong, it never raises
                grid.finish(f"could not read the store: {exc}")
                return
            if deadline is not None and time.monotonic() > deadline:
                grid.finish("stopped watching (timeout)")
                return
            stop.wait(interval)

    grid.poll_thread = threading.Thread(target=loop, name="kling-lab-watch", daemon=True)
    grid.poll_thread.start()
    return grid.widget


__all__ = ["LiveGrid", "LiveRun", "default_facets", "planned_record", "run", "watch"]
