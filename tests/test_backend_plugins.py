"""A backend an installed package registers through the ``kling_lab.backends`` entry point can be named
with ``--backend`` on the command line (a tiny plugin package is really pip-installed for this)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = '''
from kling_lab.backends.emulator.backend import EmulatorBackend


class ProxyBackend(EmulatorBackend):
    """The emulator under another name, as a team's own proxy backend would be."""

    name = "team-proxy"


def make_backend(**options):
    return ProxyBackend(**options)


def broken(**options):
    raise RuntimeError("never called")
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip-install a two-file plugin package into a private site directory."""
    src = tmp_path_factory.mktemp("plugin-src")
    (src / "team_proxy_plugin.py").write_text(PLUGIN)
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "team-proxy-plugin"\nversion = "0.1"\n'
        '[tool.setuptools]\npy-modules = ["team_proxy_plugin"]\n'
        '[project.entry-points."kling_lab.backends"]\n'
        'team-proxy = "team_proxy_plugin:make_backend"\n'
        'missing-module = "no_such_module_anywhere:make_backend"\n'
    )
    site = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return site


def cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "kling_lab.cli", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=180
    )


def test_the_plugin_backend_is_a_choice_and_runs_a_sweep(plugin_site: Path, emulator, tmp_path: Path) -> None:
    assert "team-proxy" in cli(plugin_site, "run", "--help").stdout
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: plug\nprompt: a lighthouse at night\ngrid: {cfg_scale: [0.2, 0.8]}\n")
    store = tmp_path / "store"
    done = cli(plugin_site, "run", str(sweep), "--backend", "team-proxy", "--store", str(store), "--no-progress")
    assert done.returncode == 0, done.stderr
    runs = pd.read_parquet(store / "runs")
    assert list(runs["backend"]) == ["team-proxy", "team-proxy"] and set(runs["status"]) == {"ok"}


def test_without_the_plugin_the_name_is_refused(emulator, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kling_lab.cli", "run", "x.yaml", "--backend", "team-proxy"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2 and "invalid choice: 'team-proxy'" in done.stderr


def test_a_plugin_that_cannot_load_is_one_line_exit_2(plugin_site: Path, emulator, tmp_path: Path) -> None:
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: plug\nprompt: a lighthouse at night\n")
    done = cli(plugin_site, "run", str(sweep), "--backend", "missing-module", "--store", str(tmp_path / "st"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "kling-lab: error: backend 'missing-module' (from no_such_module_anywhere:make_backend) could not be "
        "loaded: No module named 'no_such_module_anywhere'"
    ]
    assert not (tmp_path / "st").exists()
