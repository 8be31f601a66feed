"""``report``: a static HTML gallery of a sweep that opens from disk with no server and no network.

The page holds the same faceted grid and synced playback as ``compare`` (``grid.js`` + ``synced_playback.js``
inlined), then cost/latency, parameter and QC-metric tables. Videos and posters are referenced by
paths relative to the report (so keep the store where it is), or copied into ``<name>_files/``
beside it with ``copy_videos=True`` (then the report folder can be zipped and sent). Nothing is
loaded from a CDN: no external scripts, styles or fonts.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

import pandas as pd

from kling_lab._version import __version__
from kling_lab.errors import InvalidInput
from kling_lab.store.run_store import RunStore, store_of
from kling_lab.views import assets, htmltables
from kling_lab.views.grid import build_grid, check_facets, view_state
from kling_lab.views.sources import RelativeSource


def script_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>``, ``<!--`` or ``&`` sequences)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _title(runs: pd.DataFrame) -> str:
    names = sorted({str(n) for n in runs.get("experiment", pd.Series(dtype=str)).dropna()})
    return "kling_lab report" + (f": {', '.join(names)}" if names else "")


def _subtitle(runs: pd.DataFrame) -> str:
    parts = [f"generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"]
    sweeps = sorted({str(s) for s in runs.get("sweep_id", pd.Series(dtype=str)).dropna()})
    if sweeps:
        parts.append("sweep " + ", ".join(sweeps))
    if "backend" in runs and (runs["backend"] == "emulator").any():
        parts.append("emulator rows are placeholders, not Kling output")
    return " · ".join(parts)


def render_report(
    runs: pd.DataFrame,
    page_dir: Path,
    *,
    rows: str | None,
    cols: str | None,
    copy_dir: Path | None = None,
    title: str | None = None,
    store: RunStore | str | os.PathLike[str] | None = None,
) -> str:
    """The report's HTML text, for a page that will live in ``page_dir``."""
    facets = check_facets(runs, rows, cols) if len(runs.columns) else []
    spec = build_grid(
        runs, rows, cols, repeat="stack", store=store_of(runs, store), source=RelativeSource(page_dir, copy_dir)
    )
    script = assets.bundle("synced_playback.js", "grid.js", "report.js")
    if "</script" in script.lower():
        raise AssertionError("the inlined JavaScript must not contain '</script'")
    page_title = title or _title(runs)
    return Template(assets.text("report.html")).substitute(
        version=html.escape(__version__),
        title=html.escape(page_title),
        subtitle=html.escape(_subtitle(runs)),
        css=assets.stylesheet(),
        grid_json=script_json(view_state(spec)),
        script=script,
        summary_table=htmltables.summary_table(runs),
        params_table=htmltables.params_table(runs) if len(runs) else "",
        metrics_table=htmltables.metrics_table(runs, facets) if len(runs) else "",
    )


def _output_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as the report file to write, its directory made; InvalidInput (one line) when it
    is a directory or its directory cannot be made."""
    out = Path(path)
    if not out.name or out.is_dir():
        raise InvalidInput(f"report: {out} is a directory; name the report file, e.g. {out / 'report.html'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"report: cannot create the directory of {out}: {exc.strerror}") from None
    return out


def report(
    runs: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    rows: str | None = "cfg_scale",
    cols: str | None = "aspect_ratio",
    copy_videos: bool = False,
    title: str | None = None,
    store: RunStore | str | os.PathLike[str] | None = None,
) -> Path:
    """Write the HTML report of ``runs`` to ``path`` (atomically) and return the path.

    ``copy_videos``: copy videos and posters into ``<stem>_files/`` beside the report instead of
    referencing them in the store by relative path.
    """
    out = _output_path(path)
    copy_dir = out.parent / f"{out.stem}_files" if copy_videos else None
    text = render_report(runs, out.parent, rows=rows, cols=cols, copy_dir=copy_dir, title=title, store=store)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # a report is for sharing: the usual file mode, not mkstemp's 0600
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
