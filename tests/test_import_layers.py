"""Imports go one way: a lower layer never imports a higher one or the package root, and no
module imports itself back through others (walks every import statement with ast, function-level
imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kling_lab"

# Low → high. A module may import modules of its own layer or below.
LAYERS: dict[str, int] = {
    "_version": 0,
    "errors": 0,
    "util": 0,
    "request": 1,
    "models": 1,
    "sweep_file": 2,
    "sweep_expand": 2,
    "estimate": 2,
    "sweep": 3,
    "media": 4,
    "store": 5,
    "backends": 6,
    "stats": 7,  # below runner: a race (runner/race.py) decides with stats' bounds
    "runner": 8,
    "judges": 9,
    "plots": 10,
    "views": 11,
    "notebooks": 12,
    "cli": 13,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The kling_lab modules ``name`` imports (a ``from pkg import submodule`` counts the submodule)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "kling_lab")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "kling_lab":
            assert node.level == 0, f"{name}: relative import (use absolute imports)"
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def layer(name: str) -> int | None:
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if m != "kling_lab" and layer(m) is None] == []


def test_no_module_imports_the_package_root() -> None:
    offenders = sorted(m for m, deps in GRAPH.items() if m != "kling_lab" and "kling_lab" in deps)
    assert offenders == []


def test_imports_go_down_the_layers() -> None:
    upward = sorted(
        f"{m} ({layer(m)}) imports {d} ({layer(d)})"
        for m, deps in GRAPH.items()
        if m != "kling_lab"
        for d in deps
        if d != "kling_lab" and (layer(d) or 0) > (layer(m) or 0)
    )
    assert upward == []


def test_no_import_cycles() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(GRAPH.get(node, ())):
            if dep not in GRAPH:
                continue
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)
    assert cycles == []


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("from kling_lab.views.grid import x\n", "upward"),
        ("from kling_lab import run\n", "root"),
    ],
)
def test_the_checks_catch_a_planted_bad_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, problem: str
) -> None:
    """The checks can fail: a store module that imports a view, or the root, is reported."""
    planted = "kling_lab.store.planted"
    monkeypatch.setitem(MODULES, planted, tmp_path / "planted.py")
    (tmp_path / "planted.py").write_text(source)
    monkeypatch.setitem(GRAPH, planted, imports_of(planted))
    check = test_imports_go_down_the_layers if problem == "upward" else test_no_module_imports_the_package_root
    with pytest.raises(AssertionError):
        check()


def test_the_cycle_check_catches_a_planted_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for me, other in (("a", "b"), ("b", "a")):
        path = tmp_path / f"{me}.py"
        path.write_text(f"from kling_lab.store.planted_{other} import x\n")
        monkeypatch.setitem(MODULES, f"kling_lab.store.planted_{me}", path)
    for me in ("a", "b"):
        monkeypatch.setitem(GRAPH, f"kling_lab.store.planted_{me}", imports_of(f"kling_lab.store.planted_{me}"))
    with pytest.raises(AssertionError):
        test_no_import_cycles()
