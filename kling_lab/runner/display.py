"""How a ``RunResult`` shows as a notebook cell's last line: the summary sentence over a small table."""

from __future__ import annotations

from typing import Any

from kling_lab.util.html import card_html
from kling_lab.util.money import money_text


def result_html(result: Any) -> str:
    """HTML of a ``RunResult``: its ``summary()`` and a table of counts, money and where the rows are."""
    rows: list[tuple[str, Any]] = [
        ("ok", result.count("ok")),
        ("failed", result.count("failed")),
    ]
    for label, n in (
        ("from cache ($0)", result.cache_hits),
        ("cancelled", result.count("cancelled")),
        ("skipped: budget cap", result.count("skipped_budget")),
        ("still pending at fal", result.pending),
    ):
        if n:
            rows.append((label, n))
    rows += [
        ("submitted", result.submitted),
        ("money", money_text(result.spent_usd, result.backend)),
        ("backend", result.backend or "?"),
        ("sweep_id", result.sweep_id or "—"),
        ("store", result.store.location),
    ]
    title = ("Interrupted run" if result.interrupted else "Run") + (f" {result.sweep_id}" if result.sweep_id else "")
    return card_html(title, rows, verdict=result.summary())


__all__ = ["result_html"]
