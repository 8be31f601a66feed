"""Mutation testing of the modules where a silent bug costs money or a verdict (cosmic-ray's mutants).

    pip install -e '.[test,dev]'
    python -m tools.mutation                 # every target of [tool.kling_lab.mutation] in pyproject.toml
    python -m tools.mutation --quick         # the quick subset (a few minutes)
    python -m tools.mutation --target budget --target retries --jobs 2
    python -m tools.mutation --list          # the mutants, without running anything

Each target is a module (optionally only some of its functions) and the tests that guard it. The
mutants are cosmic-ray's operators, curated to one or two per site (``+`` → ``-``; ``<=`` → ``<``
and ``>``; numbers ±1; ``and`` ↔ ``or``; ``not`` added or dropped; ``True`` ↔ ``False``; loops
that never run; exceptions swapped; ...). Each mutant is written into a scratch copy of the
checkout (``.mutation/tree-<pid>-N``; the checkout itself is never touched), and the target's tests run
there in a fresh process (``PYTHONPATH`` points at the copy, so subprocesses, the CLI and notebook
kernels run the mutant too). A failing or hanging test run kills the mutant.

Results are kept in ``.mutation/results.json``: a killed mutant stays killed until its module
changes; survivors run again when the module or the target's tests change (``--fresh`` reruns
everything). Mutants that cannot change behaviour are listed under ``equivalent`` in the config,
each with its reason, and left out of the score. Exit status: 0 when every target run reaches
``min_score``, 1 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import fcntl
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"

# One or two mutants per site, in the spirit of mutmut and PIT: an arithmetic operator becomes its
# natural opposite; a comparison gets its boundary twin and its negation.
BINARY = {
    "Add": {"Sub"},
    "Sub": {"Add"},
    "Mul": {"Div"},
    "Div": {"Mul"},
    "FloorDiv": {"Div"},
    "Mod": {"Div"},
    "Pow": {"Mul"},
    "LShift": {"RShift"},
    "RShift": {"LShift"},
    "BitOr": {"BitAnd"},
    "BitAnd": {"BitOr"},
    "BitXor": {"BitAnd"},
}
COMPARISON = {
    "Eq": {"NotEq"},
    "NotEq": {"Eq"},
    "Lt": {"LtE", "GtE"},
    "LtE": {"Lt", "Gt"},
    "Gt": {"GtE", "LtE"},
    "GtE": {"Gt", "Lt"},
    "Is": {"IsNot"},
    "IsNot": {"Is"},
    "In": {"NotIn"},
    "NotIn": {"In"},
}
UNARY = {"Delete_USub", "Delete_Not", "Delete_Invert", "USub_UAdd"}
WHOLE = {
    "AddNot",
    "ReplaceTrueWithFalse",
    "ReplaceFalseWithTrue",
    "ReplaceAndWithOr",
    "ReplaceOrWithAnd",
    "ReplaceBreakWithContinue",
    "ReplaceContinueWithBreak",
    "ExceptionReplacer",
    "NumberReplacer",
    "ZeroIterationForLoop",
}


def curated(operator: str) -> bool:
    """Is cosmic-ray's ``operator`` (e.g. ``core/ReplaceBinaryOperator_Add_Sub``) one we run?"""
    name = operator.split("/", 1)[-1]
    kind, _, rest = name.partition("_")
    if kind == "ReplaceBinaryOperator":
        old, new = rest.split("_")
        return new in BINARY.get(old, set())
    if kind == "ReplaceComparisonOperator":
        old, new = rest.split("_")
        return new in COMPARISON.get(old, set())
    if kind == "ReplaceUnaryOperator":
        return rest in UNARY
    return name in WHOLE


# -- the configuration -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    name: str
    module: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()  # ``Class.method`` or ``function``; empty: the whole module


@dataclass(frozen=True)
class Config:
    targets: tuple[Target, ...]
    quick: tuple[str, ...]
    min_score: float
    equivalent: dict[str, str]  # mutant key → why it cannot change behaviour


def load_config(path: Path = ROOT / "pyproject.toml") -> Config:
    raw = tomllib.loads(path.read_text())["tool"]["kling_lab"]["mutation"]
    targets = tuple(
        Target(t["name"], t["module"], tuple(t["tests"]), tuple(t.get("functions", ()))) for t in raw["targets"]
    )
    return Config(
        targets, tuple(raw.get("quick", ())), float(raw.get("min_score", 0.9)), dict(raw.get("equivalent", {}))
    )


# -- the mutants -------------------------------------------------------------------------------------
@dataclass
class Mutant:
    target: str
    module: str
    operator: str
    occurrence: int
    line: int
    text: str  # the source line it changes, stripped
    scope: str = "(module)"  # the function or class (``Class.method``) the line is in
    twin: int = 0  # how many earlier lines of that scope read the same (keeps keys unique)
    mutated: str = ""  # the line as the mutant reads, stripped
    outcome: str = "pending"  # killed | survived | timeout | equivalent | incompetent
    diff: str = ""
    seconds: float = 0.0
    reason: str = ""

    @property
    def cache_key(self) -> str:
        """Exact for one version of the module (results are kept with the module's hash)."""
        return f"{self.module}|{self.operator}|{self.occurrence}"

    @property
    def key(self) -> str:
        """Stable across unrelated edits: the module, the function or class, the line (``@N`` for its
        N-th twin there) and the line as the mutant reads it."""
        twin = f"@{self.twin}" if self.twin else ""
        return f"{self.module}:{self.scope}: {self.text}{twin} -> {self.mutated}"


def function_ranges(source: str, names: tuple[str, ...]) -> list[tuple[int, int]]:
    """Line ranges (1-based, inclusive) of the named functions (``Class.method`` or ``function``)."""
    wanted, found = set(names), []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualified = f"{prefix}{child.name}"
                if qualified in wanted and not isinstance(child, ast.ClassDef):
                    found.append((child.lineno, child.end_lineno or child.lineno))
                    wanted.discard(qualified)
                visit(child, f"{qualified}.")

    visit(ast.parse(source), "")
    if wanted:
        raise SystemExit(f"mutation config: no function {sorted(wanted)} in the module")
    return found


def scopes(source: str) -> dict[int, tuple[str, int]]:
    """line → (the innermost function or class around it, as ``Class.method``, and its first line,
    decorators included); module-level lines are left out."""
    found: dict[int, tuple[str, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualified = f"{prefix}{child.name}"
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                for line in range(first, (child.end_lineno or child.lineno) + 1):
                    found[line] = (qualified, first)
                visit(child, f"{qualified}.")

    visit(ast.parse(source), "")
    return found


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the type annotations are: mutating them changes nothing at run time (PEP 563)."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        notes: list[ast.expr | None] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            notes.append(node.returns)
        elif isinstance(node, ast.arg | ast.AnnAssign):
            notes.append(node.annotation)
        for note in notes:
            if note is not None:
                spans.append(((note.lineno, note.col_offset), (note.end_lineno or 0, note.end_col_offset or 0)))
    return spans


def signature_lines(source: str) -> set[int]:
    """Lines of ``def`` signatures: cosmic-ray takes their keyword-only ``*`` for a multiplication."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines.update(range(node.lineno, node.body[0].lineno))
    return lines


def mutants_of(target: Target, tree: Path) -> list[Mutant]:
    """The curated mutants of ``target``'s module (in ``tree``), limited to its functions if named."""
    from cosmic_ray.ast import ast_nodes, get_ast_from_path
    from cosmic_ray.commands.init import _operators

    path = tree / target.module
    source = path.read_text()
    lines = source.splitlines()
    ranges = function_ranges(source, target.functions) if target.functions else None
    annotations = annotation_spans(source)
    signatures = signature_lines(source)
    scope_of = scopes(source)
    module_ast = get_ast_from_path(path)
    found: list[Mutant] = []
    for name, _args, operator in _operators({}):
        if not curated(name):
            continue
        positions = [pos for node in ast_nodes(module_ast) for pos in operator.mutation_positions(node)]
        for occurrence, (start, _end) in enumerate(positions):
            line = start[0]
            if ranges is not None and not any(a <= line <= b for a, b in ranges):
                continue
            if "pragma: no mutate" in lines[line - 1] or any(a <= start < b for a, b in annotations):
                continue
            if "ReplaceBinaryOperator_Mul_" in name and line in signatures:
                continue
            text = lines[line - 1].strip()
            scope, first = scope_of.get(line, ("(module)", 1))
            twin = sum(
                1
                for number, earlier in enumerate(lines[first - 1 : line - 1], start=first)
                if earlier.strip() == text and scope_of.get(number, ("(module)", 1))[0] == scope
            )
            mutant = Mutant(target.name, target.module, name, occurrence, line, text, scope, twin)
            _, code = mutated_source(tree, mutant)
            if code is None or not compiles(code, str(path)):
                mutant.outcome = "incompetent"  # e.g. ``{**row}`` read as a power: ``{*row}`` is no Python
            changed = code.splitlines() if code is not None else lines
            mutant.mutated = " ".join(changed[line - 1].split()) if line <= len(changed) else ""
            found.append(mutant)
    return found


def compiles(code: str, filename: str) -> bool:
    try:
        compile(code, filename, "exec")
    except SyntaxError:
        return False
    return True


def stale_equivalents(config: Config, targets: list[Target], found: dict[str, list[Mutant]]) -> list[str]:
    """The ``equivalent`` entries for the modules of ``targets`` that name no mutant of them (the code moved on)."""
    modules = {t.module for t in targets}
    keys = {m.key for mutants in found.values() for m in mutants}
    return [k for k in config.equivalent if k.split(":", 1)[0] in modules and k not in keys]


def mutated_source(tree: Path, mutant: Mutant) -> tuple[str, str | None]:
    from cosmic_ray.mutating import mutate_code
    from cosmic_ray.plugins import get_operator

    original = (tree / mutant.module).read_text()
    return original, mutate_code(original, get_operator(mutant.operator)(), mutant.occurrence)


# -- running -----------------------------------------------------------------------------------------
def scratch_tree(index: int) -> Path:
    """A copy of the checkout's files (tracked and new, as they are now) at ``.mutation/tree-<pid>-N``
    (one set per run of this tool, so two runs never share a copy)."""
    tree = WORK / f"tree-{os.getpid()}-{index}"
    if tree.exists():
        shutil.rmtree(tree)
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, tree / rel)
    return tree


def run_tests(tree: Path, tests: tuple[str, ...], timeout_s: float) -> tuple[str, float, str]:
    """("passed" | "failed" | "timeout", seconds, the output's tail) of the tests run in ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    started = time.monotonic()
    proc = subprocess.Popen(
        command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "timeout", time.monotonic() - started, ""
    seconds = time.monotonic() - started
    return ("passed" if proc.returncode == 0 else "failed"), seconds, out.decode(errors="replace")[-2000:]


def try_mutant(tree: Path, mutant: Mutant, tests: tuple[str, ...], timeout_s: float) -> Mutant:
    original, mutated = mutated_source(tree, mutant)
    if mutated is None:
        mutant.outcome = "incompetent"
        return mutant
    path = tree / mutant.module
    mutant.diff = "".join(
        difflib.unified_diff(original.splitlines(True), mutated.splitlines(True), mutant.module, mutant.module, n=1)
    )
    try:
        path.write_text(mutated)
        result, mutant.seconds, _ = run_tests(tree, tests, timeout_s)
    finally:
        path.write_text(original)
    mutant.outcome = {"passed": "survived", "failed": "killed", "timeout": "timeout"}[result]
    return mutant


def record(cache_file: Path, key: str, entry: dict[str, Any]) -> None:
    """Add one result to the results file, merged with what other runs of this tool wrote meanwhile
    (under a lock, replaced atomically: two runs at once lose none of each other's results)."""
    with open(cache_file.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = json.loads(cache_file.read_text()) if cache_file.exists() else {}
        current[key] = entry
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, indent=1))
        os.replace(tmp, cache_file)


def digest(tree: Path, paths: Iterator[str] | tuple[str, ...]) -> str:
    """SHA-256 over the files (or test node ids' files, or directories' .py files) named."""
    h = hashlib.sha256()
    for rel in dict.fromkeys(p.split("::")[0] for p in paths):
        for file in sorted((tree / rel).rglob("*.py")) if (tree / rel).is_dir() else [tree / rel]:
            h.update(file.read_bytes())
    return h.hexdigest()


@dataclass
class Report:
    mutants: list[Mutant] = field(default_factory=list)

    def counts(self, target: str | None = None) -> dict[str, int]:
        chosen = [m for m in self.mutants if target is None or m.target == target]
        out = {k: 0 for k in ("killed", "timeout", "survived", "equivalent", "incompetent")}
        for m in chosen:
            out[m.outcome] = out.get(m.outcome, 0) + 1
        return out

    @staticmethod
    def score(counts: dict[str, int]) -> float:
        decided = counts["killed"] + counts["timeout"] + counts["survived"]
        return 1.0 if decided == 0 else (counts["killed"] + counts["timeout"]) / decided


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the targets listed under quick")
    parser.add_argument("--target", action="append", default=[], help="a target's name (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--fresh", action="store_true", help="ignore earlier results")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    args = parser.parse_args(argv)

    config = load_config()
    names = args.target or (list(config.quick) if args.quick else [t.name for t in config.targets])
    unknown = set(names) - {t.name for t in config.targets}
    if unknown:
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    targets = [t for t in config.targets if t.name in names]

    WORK.mkdir(exist_ok=True)
    trees = [scratch_tree(i) for i in range(1 if args.list else max(1, args.jobs))]
    cache_file = WORK / "results.json"
    cache: dict[str, Any] = {} if args.fresh or not cache_file.exists() else json.loads(cache_file.read_text())
    report = Report()
    free: queue.Queue[Path] = queue.Queue()
    for tree in trees:
        free.put(tree)

    everything = {t.name: mutants_of(t, trees[0]) for t in targets}
    stale = stale_equivalents(config, targets, everything)
    for key in stale:
        print(f"mutation config: equivalent entry matches no mutant (update or remove it): {key}", file=sys.stderr)

    for target in targets:
        mutants = everything[target.name]
        module_hash, tests_hash = digest(trees[0], (target.module,)), digest(trees[0], target.tests)
        if args.list:
            for m in mutants:
                print(f"{target.name}: {m.key}{' (not valid Python: not run)' if m.outcome == 'incompetent' else ''}")
            continue
        status, seconds, out = run_tests(trees[0], target.tests, 900)
        if status != "passed":
            print(out, file=sys.stderr)
            raise SystemExit(f"{target.name}: the tests fail without any mutant; fix them first")
        timeout_s = max(30.0, 3 * seconds)  # a mutant that hangs the tests is killed
        todo: list[Mutant] = []
        for m in mutants:
            key = m.cache_key
            earlier = cache.get(key)
            if m.outcome == "incompetent":
                continue
            if m.key in config.equivalent:
                m.outcome, m.reason = "equivalent", config.equivalent[m.key]
            elif (
                earlier
                and earlier["module"] == module_hash
                and (earlier["outcome"] in ("killed", "timeout") or earlier["tests"] == tests_hash)
            ):
                m.outcome, m.diff = earlier["outcome"], earlier.get("diff", "")
            else:
                todo.append(m)
        invalid = sum(m.outcome == "incompetent" for m in mutants)
        print(
            f"{target.name}: {len(mutants) - invalid} mutants ({invalid} more not valid Python), {len(todo)} to test "
            f"(tests take {seconds:.0f} s)",
            flush=True,
        )

        def work(mutant: Mutant, target: Target = target, timeout_s: float = timeout_s) -> Mutant:
            tree = free.get()  # each copy holds one mutant at a time
            try:
                return try_mutant(tree, mutant, target.tests, timeout_s)
            finally:
                free.put(tree)

        with ThreadPoolExecutor(max_workers=len(trees)) as pool:
            for done in pool.map(work, todo):
                entry = {"module": module_hash, "tests": tests_hash, "outcome": done.outcome, "diff": done.diff}
                cache[done.cache_key] = entry
                record(cache_file, done.cache_key, entry)
                mark = {"killed": ".", "timeout": "t", "survived": "S", "incompetent": "i"}[done.outcome]
                print(mark, end="", flush=True)
        if todo:
            print()
        report.mutants.extend(mutants)

    for tree in trees:
        shutil.rmtree(tree, ignore_errors=True)
    if args.list:
        return 1 if stale else 0
    return summarize(report, targets, config.min_score)


def summarize(report: Report, targets: list[Target], min_score: float) -> int:
    print(f"\n{'target':<22} {'mutants':>7} {'killed':>7} {'timeout':>7} {'survived':>8} {'equiv':>6} {'score':>7}")
    ok = True
    for target in targets:
        c = report.counts(target.name)
        score = report.score(c)
        ok &= score >= min_score
        total = sum(c.values()) - c["incompetent"]
        print(
            f"{target.name:<22} {total:>7} {c['killed']:>7} {c['timeout']:>7} {c['survived']:>8} "
            f"{c['equivalent']:>6} {score:>7.1%}"
        )
    c = report.counts()
    print(
        f"{'all':<22} {sum(c.values()) - c['incompetent']:>7} {c['killed']:>7} {c['timeout']:>7} "
        f"{c['survived']:>8} {c['equivalent']:>6} {report.score(c):>7.1%}"
    )
    survivors = [m for m in report.mutants if m.outcome == "survived"]
    if survivors:
        print(f"\nSurvivors ({len(survivors)}):")
        for m in survivors:
            print(f"- [{m.target}] line {m.line}: {m.key}")
    equivalents = [m for m in report.mutants if m.outcome == "equivalent"]
    if equivalents:
        print(f"\nEquivalent ({len(equivalents)}), not scored:")
        for m in equivalents:
            print(f"- [{m.target}] line {m.line}: {m.key}\n    {m.reason}")
    summary = {t.name: report.counts(t.name) for t in targets}
    (WORK / "summary.json").write_text(json.dumps({"min_score": min_score, "targets": summary}, indent=1))
    print(
        f"\n{'PASS' if ok else 'FAIL'}: every target at or above {min_score:.0%}"
        if ok
        else f"\nFAIL: a target is below {min_score:.0%}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
