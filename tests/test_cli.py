"""The kling-lab command line: estimate, run, runs, bad input (exit 2, nothing written), fal without a key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kling_lab.cli.app import main
from kling_lab.store.run_store import load_runs

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kling_lab.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        cwd=ROOT,
    )


def test_estimate_prints_count_and_cost_without_starting_anything(emulator, tmp_path, capsys):
    assert main(["estimate", str(QUICKSTART)]) == 0
    out = capsys.readouterr().out
    assert "12 requests" in out and "$16.80" in out
    assert emulator.stats()["submissions"] == 0


BAD_SWEEPS = {
    "cfg_high": ("prompt: a\ncfg_scale: 1.5\n", "cfg_scale"),
    "cfg_nan": ("prompt: a\ncfg_scale: .nan\n", "cfg_scale"),
    "duration_7": ("prompt: a\nduration: '7'\n", "duration"),
    "aspect_4_3": ("prompt: a\naspect_ratio: '4:3'\n", "aspect_ratio"),
    "empty_prompt": ("prompt: ''\n", "prompt"),
    "long_prompt": (f"prompt: {'x' * 2501}\n", "prompt"),
    "unknown_key": ("prompt: a\nseed: 4\n", "seed"),
}


@pytest.mark.parametrize("case", sorted(BAD_SWEEPS))
@pytest.mark.parametrize("command", ["run", "estimate"])
def test_bad_input_exit_2_one_line_nothing_written(case, command, emulator, tmp_path, capsys):
    text, field = BAD_SWEEPS[case]
    sweep = tmp_path / f"{case}.yaml"
    sweep.write_text(text)
    store = tmp_path / "store"
    args = [command, str(sweep)] + (["--store", str(store)] if command == "run" else [])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kling-lab: error:") and field in err and "\n" not in err
    assert not store.exists()
    assert emulator.stats()["submissions"] == 0


def test_missing_sweep_file(emulator, tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml"), "--store", str(tmp_path / "s")]) == 2
    assert "no such sweep file" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "option", [["--concurrency", "0"], ["--max-cost", "-1"], ["--max-cost", "lots"], ["--backend", "replicate"]]
)
def test_bad_options_exit_2(option, emulator, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["run", str(QUICKSTART), "--store", str(tmp_path / "s"), *option])
    assert info.value.code == 2
    assert emulator.stats()["submissions"] == 0


def test_fal_backend_without_key_submits_nothing(emulator, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_KEY")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kling_lab.cli",
            "run",
            str(QUICKSTART),
            "--backend",
            "fal",
            "--store",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "FAL_KEY" in proc.stderr and "nothing was submitted" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert emulator.stats()["submissions"] == 0
    assert not (tmp_path / "s").exists()


def test_fal_backend_refuses_emulator_host_even_with_a_key(emulator, tmp_path):
    # In a process whose fal_client points at the emulator, "fal" must never pretend.
    proc = cli(
        "run", str(QUICKSTART), "--backend", "fal", "--store", str(tmp_path / "s"), env={"FAL_KEY": "fal-test-key-0000"}
    )
    assert proc.returncode == 2 and "emulator" in proc.stderr
    assert emulator.stats()["submissions"] == 0


def test_cli_run_then_runs_table(emulator, tmp_path):
    sweep = tmp_path / "two.yaml"
    sweep.write_text("name: two\nprompt: a paper boat\ngrid: {cfg_scale: [0.2, 0.8]}\n")
    store = tmp_path / "store"
    proc = cli("run", str(sweep), "--store", str(store), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "2 ok, 0 failed" in proc.stdout and "$2.80 at fal prices (emulator: nothing was spent)" in proc.stdout
    assert "placeholder" in proc.stderr
    df = load_runs(store)
    assert len(df) == 2 and set(df["backend"]) == {"emulator"}
    table = cli("runs", "--store", str(store))
    assert table.returncode == 0
    assert "two" in table.stdout and "2 runs (2 ok)" in table.stdout and "$2.80" in table.stdout


def test_runs_on_empty_store(tmp_path, capsys):
    assert main(["runs", "--store", str(tmp_path / "empty")]) == 0
    assert "no runs" in capsys.readouterr().out


def test_fal_backend_has_a_default_cap_of_25_dollars(tmp_path):
    """In a process not pointed at the emulator, naming fal with a key builds a capped runner
    (nothing is sent: the runner is only constructed)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FAL_QUEUE_RUN_HOST", "FAL_RUN_HOST", "KLING_LAB_EMULATOR")}
    env["FAL_KEY"] = "fal-dummy-key-for-construction-only"
    code = (
        "from kling_lab.runner.api import make_runner\n"
        f"r = make_runner('fal', {str(tmp_path)!r})\n"
        "print(r.options.max_cost_usd, r.backend.name, repr(r.backend))\n"
        f"r2 = make_runner('fal', {str(tmp_path)!r}, max_cost_usd=3.5)\n"
        "print(r2.options.max_cost_usd)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()
    assert first.startswith("25.0 fal FalBackend(") and "dummy" not in first
    assert second == "3.5"
