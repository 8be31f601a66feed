"""Text helpers shared by the CLI tables, plots, views and the emulator's captions."""

from __future__ import annotations

import json
import re
from typing import Any

ELLIPSIS = "…"
# C0/C1 control characters (ESC, CSI, BEL, NUL, CR, DEL, ...), but not newline and tab.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def control_character(text: str) -> tuple[str, int] | None:
    """The first control character in ``text`` (other than newline and tab) and its position."""
    found = _CONTROL.search(text)
    return (found.group(), found.start()) if found else None


def printable(text: str) -> str:
    """``text`` safe to print to a terminal: control characters other than newline and tab shown
    as escapes (``\\x1b``), so stored text cannot move the cursor, retitle or clear the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def truncate(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` characters, ending in "…" when it was cut."""
    if width < 1:
        return ""
    return text if len(text) <= width else text[: width - 1] + ELLIPSIS


def canonical_json(value: Any) -> str:
    """One JSON text per value (sorted keys, no spaces, unescaped unicode): what fingerprints hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


__all__ = ["ELLIPSIS", "canonical_json", "control_character", "printable", "truncate"]
