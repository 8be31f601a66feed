"""``compare``: a grid of videos faceted by two run-log columns, with playback synced across cells.

One control row plays, pauses, loops and scrubs every video from one master clock (``synced_playback.js``);
dropdowns filter the other parameters that vary; "show prompt diff" highlights how each cell's
prompt differs from the most common one. Videos are referenced by URL (see ``sources`` for the
loopback server vs Jupyter ``/files/`` trade-off), or inlined as small previews with ``embed=True``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import anywidget
import pandas as pd
import traitlets

from kling_lab.errors import InvalidInput
from kling_lab.store.run_store import RunStore, store_of
from kling_lab.views import assets
from kling_lab.views.grid import (
    RepeatMode,
    build_grid,
    check_ranges,
    check_sort,
    selection_for,
    view_state,
    visible,
)
from kling_lab.views.sources import Source, SourceName, make_source


class CompareWidget(anywidget.AnyWidget):
    """The compare grid. Python-side controls: ``play()``, ``pause()``, ``seek(t)``, ``selection``."""

    _esm = assets.bundle("synced_playback.js", "grid.js", "compare.js")
    _css = assets.stylesheet()

    grid = traitlets.Dict().tag(sync=True)  # the spec from views.grid.build_grid
    selection = traitlets.Dict().tag(sync=True)  # filter column → value key ("*" = all); plain values accepted
    sort = traitlets.Unicode("").tag(sync=True)  # "" facets; "qc_motion" ascending; "-qc_motion" descending
    ranges = traitlets.Dict().tag(sync=True)  # numeric column → [low, high] (either None): only cells inside
    show_diff = traitlets.Bool(False).tag(sync=True)
    show_details = traitlets.Bool(False).tag(sync=True)  # unfold every card's details
    playing = traitlets.Bool(False).tag(sync=True)
    loop = traitlets.Bool(True).tag(sync=True)
    tolerance = traitlets.Float(0.15).tag(sync=True)  # seconds of drift before a video is re-seeked

    @traitlets.validate("selection")
    def _plain_values(self, proposal: dict[str, Any]) -> dict[str, str]:
        """Accept plain values (``{"negative_prompt": ""}``) as ``compare(filters=…)`` does."""
        try:
            return selection_for(self.grid.get("filters", []), proposal["value"])
        except InvalidInput as exc:
            raise traitlets.TraitError(str(exc)) from None

    @traitlets.validate("sort")
    def _known_sort(self, proposal: dict[str, Any]) -> str:
        try:
            return check_sort(proposal["value"], [s["column"] for s in self.grid.get("sortable", [])])
        except InvalidInput as exc:
            raise traitlets.TraitError(str(exc)) from None

    @traitlets.validate("ranges")
    def _known_ranges(self, proposal: dict[str, Any]) -> dict[str, Any]:
        try:
            return check_ranges(proposal["value"], [s["column"] for s in self.grid.get("sortable", [])])
        except InvalidInput as exc:
            raise traitlets.TraitError(str(exc)) from None

    _stop_live: Any = None  # set by views.live.watch

    def stop_watching(self) -> None:
        """Stop following a sweep (``watch``); the grid keeps what it shows."""
        if self._stop_live is not None:
            self._stop_live()

    def play(self) -> None:
        self.playing = True

    def pause(self) -> None:
        self.playing = False

    def seek(self, t: float) -> None:
        """Move every video to ``t`` seconds (clamped to the longest clip)."""
        self.send({"type": "seek", "t": float(t)})

    def visible_cells(self) -> list[dict[str, Any]]:
        """The cells the current ``selection``, ``ranges`` and ``sort`` show, in order."""
        return visible(self.grid, self.selection, self.sort, self.ranges)

    def __repr__(self) -> str:
        return f"<CompareWidget: {len(self.grid.get('cells', []))} runs, {self.grid.get('summary', '')}>"


def compare(
    runs: pd.DataFrame,
    rows: str | None = "cfg_scale",
    cols: str | None = "aspect_ratio",
    *,
    repeat: RepeatMode = "stack",
    filters: Mapping[str, Any] | None = None,
    sort: str = "",
    ranges: Mapping[str, tuple[float | None, float | None]] | None = None,
    metric: str | None = "qc_motion",
    embed: bool = False,
    store: RunStore | str | os.PathLike[str] | None = None,
    source: SourceName | Source = "server",
    files_root: str | os.PathLike[str] | None = None,
    tolerance: float = 0.15,
) -> CompareWidget:
    """A side-by-side grid of ``runs`` (a ``load_runs`` DataFrame or a slice of it).

    ``rows``/``cols``: the run-log columns to facet by (None: a single row/column).
    ``repeat``: ``"stack"`` runs that share a facet position, or ``"select"`` one repeat at a time.
    ``filters``: initial dropdown choices, e.g. ``{"negative_prompt": ""}`` (``"*"`` = all).
    ``sort``: ``"qc_motion"`` / ``"-qc_motion"`` ranks the clips by any numeric column (a QC metric,
    cost, latency, a judge score merged into ``runs``) instead of faceting; ``ranges``:
    ``{"qc_motion": (0.2, None)}`` keeps only clips in range. ``metric``: the one shown under each clip.
    ``embed``: inline ≤240 px previews so the notebook plays anywhere (larger notebook).
    ``source``: ``"server"`` (loopback server in the kernel) or ``"files"`` (Jupyter's ``/files/``
    route, for remote JupyterHub; videos must be under ``files_root``, the Jupyter root).
    ``store``: resolves relative ``video_path`` values (default: the store ``runs`` was loaded from,
    else ``$KLING_LAB_STORE`` or ./kling_runs).
    """
    spec = build_grid(
        runs,
        rows,
        cols,
        repeat=repeat,
        filters=filters,
        store=store_of(runs, store),
        source=make_source(source, embed=embed, files_root=files_root),
        metric=metric,
    )
    return CompareWidget(**view_state(spec, tolerance=tolerance, sort=sort, ranges=ranges))
