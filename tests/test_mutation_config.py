"""The mutation tool's configuration and results file (``python -m tools.mutation``; see DEVELOPMENT.md).

The mutation run itself needs cosmic-ray (the ``dev`` extra) and hours; what is checked here is that
its configuration names what exists, so a renamed module, test or function cannot silently shrink a
target, and that two runs at once keep each other's results."""

from __future__ import annotations

import ast
import json
import threading
from pathlib import Path

import pytest

from tools import mutation

ROOT = Path(__file__).resolve().parents[1]
CONFIG = mutation.load_config()


def defined_names(module: Path) -> set[str]:
    names: set[str] = set()

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(prefix + child.name)
                visit(child, f"{prefix}{child.name}.")

    visit(ast.parse(module.read_text()), "")
    return names


@pytest.mark.parametrize("target", CONFIG.targets, ids=lambda t: t.name)
def test_every_target_names_a_module_functions_and_tests_that_exist(target):
    module = ROOT / target.module
    assert module.is_file(), target.module
    missing = set(target.functions) - defined_names(module)
    assert not missing, f"{target.name}: no such function(s) in {target.module}: {sorted(missing)}"
    for test in target.tests:
        path, _, name = test.partition("::")
        assert (ROOT / path).is_file(), test
        if name:
            assert name.split("[")[0] in defined_names(ROOT / path), f"{target.name}: no test {test}"


def test_every_equivalent_names_a_targeted_module_and_gives_a_reason():
    modules = {t.module for t in CONFIG.targets}
    for key, reason in CONFIG.equivalent.items():
        assert key.split(":", 1)[0] in modules, key
        assert " -> " in key, key
        assert len(reason) >= 20, f"say why {key!r} cannot change behaviour"
    assert CONFIG.min_score >= 0.9
    assert set(CONFIG.quick) <= {t.name for t in CONFIG.targets}


def test_two_runs_writing_results_at_once_lose_none(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"earlier": {"outcome": "killed"}}))

    def write(run: int) -> None:
        for i in range(40):
            mutation.record(results, f"run{run}|{i}", {"outcome": "killed"})

    threads = [threading.Thread(target=write, args=(run,)) for run in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(json.loads(results.read_text())) == 1 + 3 * 40
