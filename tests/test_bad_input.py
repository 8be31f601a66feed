"""Bad input through the real CLI: one line on stderr, exit 2, nothing submitted, nothing written.

Each case drives ``kling_lab.cli.app.main`` in-process (argparse errors arrive as SystemExit(2)) and
checks the emulator's submission counter and that no store, journal or output file appeared.
"""

from __future__ import annotations

import math
import os
import socket
import time
import tracemalloc
from pathlib import Path

import pytest

from kling_lab.cli.app import main
from kling_lab.errors import InvalidInput, InvalidRequest, SweepFileError
from kling_lab.store.run_store import RunStore
from kling_lab.sweep import Sweep

ROOT = Path(__file__).resolve().parents[1]
TWO = "name: two\nprompt: a paper boat\ngrid: {cfg_scale: [0.2, 0.8]}\n"


def exit_code(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exc:  # argparse refuses an option before the command runs
        return int(exc.code or 0)


def assert_refused(args: list[str], capsys, emulator=None, *, says: str | None = None) -> str:
    """Exit 2 with exactly one stderr line (containing ``says``); no submission."""
    code = exit_code(args)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kling-lab: error:"), err
    assert "Traceback" not in err
    if says is not None:
        assert says in lines[0], lines[0]
    if emulator is not None:
        assert emulator.stats()["submissions"] == 0
    return lines[0]


def sweep_file(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- item 12: --timeout is checked before anything is submitted -------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "1e300", "-1", "0", "-inf", "soon"])
def test_bad_timeout_is_refused_before_submitting(value, emulator, tmp_path, capsys):
    store = tmp_path / "store"
    path = sweep_file(tmp_path, TWO)
    assert_refused(["run", str(path), "--store", str(store), "--timeout", value], capsys, emulator, says="--timeout")
    assert not store.exists()


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 0.0, 1e300])
def test_bad_timeout_is_refused_by_the_library_too(value, emulator, tmp_path):
    import kling_lab as kl

    with pytest.raises(ValueError, match="request_timeout_s"):
        kl.run(Sweep.grid("t", prompt="a"), store=tmp_path / "s", request_timeout_s=value, progress=False)
    assert emulator.stats()["submissions"] == 0 and not (tmp_path / "s").exists()


def test_notebook_cell_timeout_is_checked_too(tmp_path, capsys):
    assert_refused(["notebooks", "run", str(ROOT / "notebooks" / "sweep.ipynb"), "--timeout", "nan"], capsys)


# -- item 13: huge sweeps are refused before any item is built --------------------------------
HUGE = {
    "repeats": "name: big\nprompt: a\nrepeats: 1000000000\n",
    "grid": (
        "name: big\nprompt: a\ngrid:\n"
        f"  cfg_scale: [{', '.join(str(i / 100) for i in range(100))}]\n"
        f"  negative_prompt: [{', '.join(f'n{i}' for i in range(1000))}]\n"
        "  aspect_ratio: ['16:9', '9:16', '1:1']\n"
        "  duration: ['5', '10']\n"
        "repeats: 500\n"
    ),
}


@pytest.mark.parametrize("case", sorted(HUGE))
@pytest.mark.parametrize("command", ["run", "estimate"])
def test_huge_sweeps_are_refused_fast_with_bounded_memory(case, command, emulator, tmp_path, capsys):
    path = sweep_file(tmp_path, HUGE[case])
    store = tmp_path / "store"
    args = [command, str(path)] + (["--store", str(store)] if command == "run" else [])
    tracemalloc.start()
    started = time.process_time()
    try:
        line = assert_refused(args, capsys, emulator, says="--max-requests")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert "10,000" in line
    assert time.process_time() - started < 5  # CPU seconds, not wall clock: nothing was built
    assert peak < 50e6
    assert not store.exists()


def test_max_requests_raises_the_limit(emulator, tmp_path, capsys):
    path = sweep_file(tmp_path, "name: r\nprompt: a\nrepeats: 30\n")
    assert_refused(["estimate", str(path), "--max-requests", "20"], capsys, says="30 requests")
    assert main(["estimate", str(path), "--max-requests", "30"]) == 0
    assert "30 requests" in capsys.readouterr().out


def test_the_limit_holds_in_python_before_building():
    with pytest.raises(SweepFileError, match="max_requests"):
        Sweep.grid("x", prompt="a", cfg_scale=[0.1] * 1000, negative_prompt=["n"] * 1000, repeats=1000)
    assert len(Sweep.grid("x", prompt="a", repeats=20_000, max_requests=20_000)) == 20_000


LAUGHS = "name: lol\nprompt: a\ntags:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10)
)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (LAUGHS, "expand to more than"),
        ("name: x\nprompt: a\ntags: {t: " + "[" * 5000 + "]" * 5000 + "}\n", "nested more than"),
        ("name: x\nprompt: a\ntags: &t {self: *t}\n", "contains it"),
        ("name: x\nprompt: a\nprompt: b\n", "'prompt' appears twice"),
        ("name: x\nprompt: a\ngrid:\n  cfg_scale: [0.1]\n  cfg_scale: [0.9]\n", "'cfg_scale' appears twice"),
    ],
    ids=["billion-laughs", "deep-5000", "self-reference", "duplicate-key", "duplicate-grid-key"],
)
def test_hostile_yaml_is_one_line(text, says, emulator, tmp_path, capsys):
    path = sweep_file(tmp_path, text)
    store = tmp_path / "store"
    tracemalloc.start()
    try:
        assert_refused(["run", str(path), "--store", str(store)], capsys, emulator, says=says)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 50e6
    assert not store.exists()


def test_duplicate_key_names_the_lines(tmp_path):
    path = sweep_file(tmp_path, "name: x\nprompt: a\ncfg_scale: 0.1\ncfg_scale: 0.9\n")
    with pytest.raises(SweepFileError, match=r"'cfg_scale' appears twice in one mapping \(lines 3 and 4\)"):
        Sweep.from_yaml(path)


@pytest.mark.parametrize(("unquoted", "number"), [("1:1", 61), ("16:9", 969), ("9:16", 556)])
def test_unquoted_aspect_ratio_names_yamls_base_60_reading(unquoted, number, tmp_path, capsys):
    path = sweep_file(tmp_path, f"name: x\nprompt: a\naspect_ratio: {unquoted}\n")
    line = assert_refused(["estimate", str(path)], capsys, says=f"got {number}")
    assert f'an unquoted {unquoted} as the base-60 number {number}: quote it, "{unquoted}"' in line


# -- item 15: input that used to be accepted without a word ----------------------------------
@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("name: x\nprompt: a\nrequests: []\n", "requests"),
        ("name: 3\nprompt: a\n", "name"),
        ('name: x\nprompt: "a fox\\0 in snow"\n', "prompt"),
        ('name: x\nprompt: "a fox \\e[2J\\e[31m in snow"\n', "control character"),
        ('name: x\nprompt: a\nnegative_prompt: "blur\\x07"\n', "negative_prompt"),
        ('name: x\nprompt: "a fox\\x9b31m"\n', "control character"),
    ],
    ids=["requests-empty", "name-int", "nul", "escape-sequence", "bell-in-negative", "c1-csi"],
)
def test_silently_accepted_input_is_refused(text, says, emulator, tmp_path, capsys):
    path = sweep_file(tmp_path, text)
    store = tmp_path / "store"
    assert_refused(["run", str(path), "--store", str(store)], capsys, emulator, says=says)
    assert not store.exists()


def test_prompts_keep_newlines_and_tabs():
    from kling_lab.request import KlingRequest

    assert KlingRequest.parse({"prompt": "line one\n\tline two"}).prompt == "line one\n\tline two"
    with pytest.raises(InvalidRequest, match="prompt"):
        KlingRequest.parse({"prompt": "a\x1b]0;pwned\x07"})


def test_empty_store_option_is_refused(emulator, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = sweep_file(tmp_path, TWO)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_refused(["run", str(path), "--store", ""], capsys, emulator, says="--store")
    for command in (["runs"], ["resume"], ["compact"], ["backfill"], ["query", "select 1"], ["report"]):
        assert_refused([*command, "--store", ""], capsys, says="store")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def _store_variants(tmp_path: Path) -> dict[str, Path]:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a store\n")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "missing-target")
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop")
    under_file = a_file / "store"
    return {"file": a_file, "dangling": dangling, "loop": loop, "under-a-file": under_file}


STORE_COMMANDS = {
    "run": lambda path, store: ["run", str(path), "--store", str(store)],
    "resume": lambda path, store: ["resume", "--store", str(store)],
    "runs": lambda path, store: ["runs", "--store", str(store)],
    "compact": lambda path, store: ["compact", "--store", str(store)],
    "backfill": lambda path, store: ["backfill", "--store", str(store)],
    "query": lambda path, store: ["query", "select count(*) from runs", "--store", str(store)],
    "report": lambda path, store: ["report", "--store", str(store), "-o", str(path.parent / "r.html")],
    "sync-source": lambda path, store: ["sync", str(store), str(path.parent / "target")],
    "sync-target": lambda path, store: ["sync", str(path.parent / "source"), str(store)],
}


@pytest.mark.parametrize("variant", ["file", "dangling", "loop", "under-a-file"])
@pytest.mark.parametrize("command", sorted(STORE_COMMANDS))
def test_a_store_that_is_not_a_directory_is_one_line(command, variant, emulator, tmp_path, capsys):
    stores = _store_variants(tmp_path)
    RunStore(tmp_path / "source").append([{"run_id": "r1", "status": "ok"}])
    path = sweep_file(tmp_path, TWO)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_refused(STORE_COMMANDS[command](path, stores[variant]), capsys, emulator, says="store")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "a-file").read_text() == "not a store\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_store_is_one_line(emulator, tmp_path, capsys):
    store = tmp_path / "ro"
    store.mkdir()
    store.chmod(0o555)
    try:
        path = sweep_file(tmp_path, TWO)
        assert_refused(["run", str(path), "--store", str(store)], capsys, emulator, says="not writable")
    finally:
        store.chmod(0o755)


@pytest.fixture
def read_only_mount(tmp_path):
    """A read-only tmpfs (refused even to root); skipped where mounting is not allowed."""
    import subprocess

    mount = tmp_path / "ro"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize("inside", ["", "new-store"])
def test_a_store_on_a_read_only_filesystem_is_one_line(inside, read_only_mount, emulator, tmp_path, capsys):
    store = read_only_mount / inside if inside else read_only_mount
    path = sweep_file(tmp_path, TWO)
    for args in (["run", str(path), "--store", str(store)], ["sync", str(tmp_path / "src"), str(store)]):
        RunStore(tmp_path / "src").append([{"run_id": "r1", "status": "ok"}])
        assert_refused(args, capsys, emulator, says="not writable")
    assert main(["runs", "--store", str(read_only_mount)]) == 0  # reading a read-only store is fine


def test_sync_from_a_missing_store_is_refused(tmp_path, capsys):
    assert_refused(["sync", str(tmp_path / "missing"), str(tmp_path / "target")], capsys, says="missing")
    assert not (tmp_path / "target").exists()


@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket/kling?access_key=AKIAEXAMPLE&secret_key=hunter2",
        "s3://bucket/kling?X-Amz-Credential=abc&X-Amz-Signature=hunter2",
        "s3://AKIAEXAMPLE:hunter2@bucket/kling",
        "s3://bucket/kling#hunter2",
    ],
)
@pytest.mark.parametrize("command", ["runs", "query", "compact", "sync"])
def test_a_store_url_with_credentials_is_one_line_that_does_not_repeat_them(url, command, tmp_path, capsys):
    args = {
        "runs": ["runs", "--store", url],
        "query": ["query", "select 1", "--store", url],
        "compact": ["compact", "--store", url],
        "sync": ["sync", str(tmp_path), url],
    }[command]
    RunStore(tmp_path).append([{"run_id": "r1", "status": "ok"}])
    line = assert_refused(args, capsys, says="store URL")
    assert "hunter2" not in line and "AKIAEXAMPLE" not in line


# -- item 14: tracebacks that became one line -------------------------------------------------
def test_report_to_a_directory_is_one_line(emulator, tmp_path, capsys):
    store = tmp_path / "store"
    assert main(["run", str(sweep_file(tmp_path, TWO)), "--store", str(store), "--no-progress"]) == 0
    capsys.readouterr()
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(["report", "--store", str(store), "-o", str(out)], capsys, says="is a directory")
    assert list(out.iterdir()) == []
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert_refused(["report", "--store", str(store), "-o", str(a_file / "r.html")], capsys, says="cannot create")


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_emulator_port_out_of_range(port, capsys):
    assert_refused(["emulator", "--port", port], capsys, says="--port")


def test_emulator_on_a_busy_port(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_refused(["emulator", "--port", str(port)], capsys, says=f"port {port}")


def test_a_grid_file_that_refers_to_itself(tmp_path, capsys):
    grid = sweep_file(tmp_path, "cfg_values: &v [*v]\n", "grid.yaml")
    out = tmp_path / "out"
    args = ["notebooks", "run", str(ROOT / "notebooks" / "sweep.ipynb"), "--grid", str(grid), "--out", str(out)]
    assert_refused(args, capsys, says="contains it")
    assert not out.exists()


def test_load_grid_refuses_duplicate_keys(tmp_path):
    from kling_lab.notebooks.grid import load_grid

    with pytest.raises(InvalidInput, match="appears twice"):
        load_grid(sweep_file(tmp_path, "a: [1]\na: [2]\n", "grid.yaml"))
