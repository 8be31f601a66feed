"""A small escaped HTML card: a verdict sentence over a two-column table.

The ``_repr_html_`` of ``Sweep``, ``Estimate``, ``RunResult`` and ``Effect`` use it, so an object
left as a cell's last line reads like pandas' and W&B's objects do: a title, the one-sentence
answer, then the facts. Every text is escaped (prompts and names are user text).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

STYLE = (
    "border-collapse:collapse;font-size:12px;margin-top:4px",
    "text-align:left;padding:2px 10px 2px 0;color:var(--jp-ui-font-color2,#59636e);font-weight:normal;"
    "vertical-align:top",
    "text-align:left;padding:2px 0;font-variant-numeric:tabular-nums;vertical-align:top",
)


def card_html(
    title: str,
    rows: Sequence[tuple[str, Any]],
    *,
    verdict: str | None = None,
    note: str | None = None,
) -> str:
    """``<div>`` with a bold ``title``, the ``verdict`` sentence, a facts table and an optional note."""
    table_style, th_style, td_style = STYLE
    body = "".join(
        f'<tr><th style="{th_style}">{escape(str(k))}</th><td style="{td_style}">{escape(str(v))}</td></tr>'
        for k, v in rows
    )
    parts = [f"<strong>{escape(title)}</strong>"]
    if verdict:
        parts.append(f'<div style="margin-top:2px">{escape(verdict)}</div>')
    parts.append(f'<table style="{table_style}">{body}</table>')
    if note:
        parts.append(f'<div style="margin-top:4px;color:var(--jp-ui-font-color2,#59636e)">{escape(note)}</div>')
    return f'<div class="kl-card-html">{"".join(parts)}</div>'


__all__ = ["card_html"]
