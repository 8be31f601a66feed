"""Word-level differences between prompts (difflib), for the "show prompt diff" toggle.

Each prompt is compared with a *base* prompt (the most common one of the set, ties broken by
first appearance), so in a grid the cells that differ stand out against what most cells share.
A diff is a list of ``[op, text]`` segments: ``"="`` shared words, ``"+"`` words only this prompt
has, ``"-"`` base words this prompt lacks. Whitespace is kept with the word before it, so
joining the ``=`` and ``+`` segments gives the prompt back exactly.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Sequence

Segment = list[str]  # [op, text]: JSON-friendly for the front end

_WORD = re.compile(r"\S+\s*|\s+")


def words(text: str) -> list[str]:
    """``text`` split into words, each with its trailing whitespace."""
    return _WORD.findall(text)


def base_prompt(prompts: Sequence[str | None]) -> str:
    """The most common non-missing prompt (first seen wins a tie); "" if there is none."""
    counts = Counter(p for p in prompts if p is not None)
    if not counts:
        return ""
    top = max(counts.values())
    return next(p for p in prompts if p is not None and counts[p] == top)


def diff(base: str, text: str) -> list[Segment]:
    """Segments turning ``base`` into ``text`` word by word (adjacent same-op segments merged)."""
    a, b = words(base), words(text)
    out: list[Segment] = []

    def emit(op: str, parts: Sequence[str]) -> None:
        chunk = "".join(parts)
        if not chunk:
            return
        if out and out[-1][0] == op:
            out[-1][1] += chunk
        else:
            out.append([op, chunk])

    matcher = difflib.SequenceMatcher(a=[w.strip() for w in a], b=[w.strip() for w in b], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            emit("=", b[j1:j2])
            continue
        if tag in ("delete", "replace"):
            emit("-", a[i1:i2])
        if tag in ("insert", "replace"):
            emit("+", b[j1:j2])
    return out


def diffs(prompts: Sequence[str | None]) -> tuple[str, list[list[Segment]]]:
    """The base prompt and every prompt's diff against it (a missing prompt diffs as "")."""
    base = base_prompt(prompts)
    return base, [diff(base, p or "") for p in prompts]
