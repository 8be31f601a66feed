"""Tiny template notebooks for the notebook-runner tests (a kernel starts in ~2 s; these add nothing to that)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

KERNELSPEC = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def write_template(path: Path, parameters: str, *cells: str) -> Path:
    """A notebook at ``path``: a cell tagged ``parameters`` holding ``parameters``, then ``cells``."""
    first = new_code_cell(parameters)
    first.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[first, *(new_code_cell(c) for c in cells)], metadata=KERNELSPEC)
    nbformat.write(nb, str(path))
    return path


def greeting_template(path: Path) -> Path:
    """Prints its ``greeting``; raises when the greeting is ``"boom"``."""
    return write_template(
        path, 'greeting = "hello"', 'if greeting == "boom":\n    raise RuntimeError("boom on purpose")\nprint(greeting)'
    )
