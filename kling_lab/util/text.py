"""Text helpers shared by the CLI tables, plots, views and the emulator's captions."""

from __future__ import annotations

ELLIPSIS = "…"


def truncate(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` characters, ending in "…" when it was cut."""
    if width < 1:
        return ""
    return text if len(text) <= width else text[: width - 1] + ELLIPSIS


__all__ = ["ELLIPSIS", "truncate"]
