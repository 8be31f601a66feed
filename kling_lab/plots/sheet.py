"""A contact sheet: frame strips of the clips, faceted by two parameters, to see what the numbers mean."""

from __future__ import annotations

import logging
import os
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image

from kling_lab.errors import KlingLabError
from kling_lab.media.frames import frame_strip
from kling_lab.plots._common import check_runs, matches, new_figure, ordered_values, require_rows, value_label
from kling_lab.store.run_store import RunStore
from kling_lab.store.schema import PARAM_COLUMNS

SHORT = {
    "negative_prompt": "neg",
    "cfg_scale": "cfg",
    "aspect_ratio": "aspect",
    "duration_s": "dur",
    "repeat": "rep",
    "prompt": "prompt",
}
log = logging.getLogger(__name__)

GAP_PX = 6  # white rows between the strips stacked in one cell
PX_PER_INCH = 110


def contact_sheet(
    df: pd.DataFrame,
    rows: str = "cfg_scale",
    cols: str = "aspect_ratio",
    n: int = 4,
    *,
    max_runs: int = 4,
    strip_height: int = 90,
    store: RunStore | str | os.PathLike[str] | None = None,
) -> Figure:
    """A grid with one panel per (``rows`` value, ``cols`` value): the frame strips (``n`` frames at equal
    steps of the clip, :func:`kling_lab.frames.frame_strip`) of up to ``max_runs`` ok clips there, stacked
    and labelled by whatever else varies (negative prompt, repeat…). Each distinct video is shown once;
    a video that is missing or unreadable is left out with a warning.

    Strips are cached next to the videos. ``store``: the store the runs come from, needed when its
    videos are remote (they are fetched into the local cache); local absolute paths work without it."""
    who = "contact_sheet"
    check_runs(df, [rows, cols, "status", "video_path", *PARAM_COLUMNS], who)
    ok = df[(df["status"] == "ok") & df["video_path"].notna()]
    ok = ok.drop_duplicates(subset="video_path")  # a cache hit shows its source's clip again
    require_rows(ok, who, "no ok run has a video")
    store = RunStore.coerce(store)
    varying = [c for c in PARAM_COLUMNS if c not in (rows, cols) and ok[c].nunique(dropna=False) > 1]
    row_values, col_values = ordered_values(ok[rows]), ordered_values(ok[cols])
    cells = {
        (r, c): _cell(ok[matches(ok[rows], rv) & matches(ok[cols], cv)], varying, n, max_runs, strip_height, store)
        for r, rv in enumerate(row_values)
        for c, cv in enumerate(col_values)
    }
    shown = {key: cell for key, cell in cells.items() if cell is not None}
    widths = [
        max((cell.canvas.shape[1] for (_, c), cell in shown.items() if c == col), default=1)
        for col in range(len(col_values))
    ]
    heights = [
        max((cell.canvas.shape[0] for (r, _), cell in shown.items() if r == row), default=strip_height)
        for row in range(len(row_values))
    ]
    fig = new_figure(
        min(18.0, sum(widths) / PX_PER_INCH + 1.6 * len(widths)),
        min(24.0, sum(heights) / PX_PER_INCH + 0.9 * len(heights) + 0.5),
    )
    grid = fig.add_gridspec(len(row_values), len(col_values), width_ratios=widths, height_ratios=heights)
    for (r, c), cell in cells.items():
        ax = fig.add_subplot(grid[r, c])
        if cell:
            _draw(ax, cell, n=n)
        else:
            ax.text(0.5, 0.5, "no ok clip", ha="center", va="center", transform=ax.transAxes, color="0.4")
            ax.set_facecolor("0.93")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("time in clip")
        ax.set_ylabel(f"{rows} = {value_label(row_values[r])}", fontsize=9)
        if r == 0:
            ax.set_title(f"{cols} = {value_label(col_values[c])}", fontsize=10)
    fig.suptitle(f"Frame strips: {rows} by row × {cols} by column ({n} frames per clip)")
    return fig


class _Cell(NamedTuple):
    canvas: np.ndarray  # the strips stacked top to bottom, RGB
    labels: list[str]  # one per strip
    durations: list[float]  # clip seconds, one per strip
    widths: set[int]  # the strips' widths in px (one value when all share an aspect ratio)


def _cell(runs: pd.DataFrame, varying: list[str], n: int, max_runs: int, height: int, store: RunStore) -> _Cell | None:
    """The stacked strips of up to ``max_runs`` runs and what labels them; None if no clip can be shown."""
    runs = runs.sort_values(varying or ["video_path"], kind="stable")
    strips: list[np.ndarray] = []
    kept: list[int] = []
    for position, path in enumerate(runs["video_path"]):  # by position: the index may repeat labels
        if len(strips) == max_runs:
            break
        strip = _strip(store, path, n, height)
        if strip is not None:
            strips.append(strip)
            kept.append(position)
    if not strips:
        return None
    runs = runs.iloc[kept]
    width = max(s.shape[1] for s in strips)
    canvas = np.full((len(strips) * (height + GAP_PX) - GAP_PX, width, 3), 255, dtype=np.uint8)
    for i, strip in enumerate(strips):
        canvas[i * (height + GAP_PX) : i * (height + GAP_PX) + height, : strip.shape[1]] = strip
    labels = [
        " · ".join(f"{SHORT.get(c, c)} {value_label(row[c], 18)}" for c in varying) or f"run {i + 1}"
        for i, (_, row) in enumerate(runs.iterrows())
    ]
    durations = runs["duration_s"].astype(float)
    if "video_duration_s" in runs.columns:  # the probed length, when known
        durations = runs["video_duration_s"].fillna(durations)
    return _Cell(canvas, labels, durations.tolist(), {s.shape[1] for s in strips})


def _strip(store: RunStore, video_path: str, n: int, height: int) -> np.ndarray | None:
    """The cached frame strip of one video as an RGB array exactly ``height`` px tall (None if unreadable)."""
    try:
        path = frame_strip(store.video_file(video_path), n=n, height=height)
    except (OSError, KlingLabError) as exc:  # missing file, failed fetch, not a video
        log.warning("contact_sheet: leaving out %s: %s", video_path, exc)
        return None
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    if image.height != height:  # a strip cached earlier at another size
        image = image.resize((round(image.width * height / image.height), height))
    return np.asarray(image)


def _draw(ax: Axes, cell: _Cell, *, n: int) -> None:
    """Show one cell: the strips, one y tick per run, x ticks at the frames' times when they line up."""
    ax.imshow(cell.canvas, interpolation="antialiased")
    pitch = (cell.canvas.shape[0] + GAP_PX) / len(cell.labels)
    ax.set_yticks([pitch * i + (pitch - GAP_PX) / 2 for i in range(len(cell.labels))], cell.labels, fontsize=7)
    if len(cell.widths) > 1:  # strips of several aspect ratios: the frames are not in columns
        ax.set_xticks([])
        ax.set_xlabel("time in clip → (each strip left to right)", fontsize=8)
        return
    centres = [(i + 0.5) * cell.canvas.shape[1] / n for i in range(n)]
    if len(set(cell.durations)) == 1:
        ax.set_xticks(centres, [f"{(i + 0.5) / n * cell.durations[0]:.1f}" for i in range(n)], fontsize=7)
        ax.set_xlabel("time in clip (s)", fontsize=8)
    else:
        ax.set_xticks(centres, [f"{(i + 0.5) / n:.0%}" for i in range(n)], fontsize=7)
        ax.set_xlabel("position in clip (% of its duration)", fontsize=8)
