"""Template markdown renders as written (issue 15 item 9: "$1.40 … $28" was typeset as LaTeX math)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_unescaped_dollar_in_markdown(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text = re.sub(r"`[^`]*`", "", cell.source)  # code spans are literal already
            assert not UNESCAPED_DOLLAR.search(text), f"{path.name}: write \\$ for dollars: {cell.source[:80]!r}"
