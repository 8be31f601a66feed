"""A model an installed package registers through the ``kling_lab.models`` entry point group is listed,
priced and validated like a built-in one (a tiny plugin package is really pip-installed for this)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = """
from decimal import Decimal

from kling_lab.models import Endpoint, Model, PerClip
from kling_lab.models.kling import KlingTextToVideo


def models():
    return [
        Model(
            alias="team-kling",
            name="Our Kling deployment",
            family="team",
            t2v=Endpoint(
                id="team/kling-proxy/text-to-video",
                schema=KlingTextToVideo,
                price=PerClip(Decimal("0.90")),
                sizes={("", "16:9"): (1280, 720), ("", "9:16"): (720, 1280), ("", "1:1"): (720, 720)},
                source_url="https://example.com/our-proxy",
                read_on="2026-12-01",
            ),
        )
    ]
"""


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("model-plugin-src")
    (src / "team_models_plugin.py").write_text(PLUGIN)
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "team-models-plugin"\nversion = "0.1"\n'
        '[tool.setuptools]\npy-modules = ["team_models_plugin"]\n'
        '[project.entry-points."kling_lab.models"]\n'
        'team = "team_models_plugin:models"\n'
    )
    site = tmp_path_factory.mktemp("model-plugin-site")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"),
            *("--target", str(site), str(src)),
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


def test_the_plugin_model_is_listed_estimated_and_validated(plugin_site: Path, tmp_path: Path) -> None:
    listed = cli(plugin_site, "models", "team-kling")
    assert listed.returncode == 0, listed.stderr
    assert "team-kling  Our Kling deployment (team)" in listed.stdout
    assert "team/kling-proxy/text-to-video" in listed.stdout and "$0.90 per 5 s clip" in listed.stdout
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: plug\nprompt: a lighthouse\ngrid: {model: [team-kling, kling-2.0-master]}\n")
    estimate = cli(plugin_site, "estimate", str(sweep))
    assert estimate.returncode == 0 and "team-kling" in estimate.stdout and "$2.30 if all succeed" in estimate.stdout
    sweep.write_text("name: plug\nprompt: a lighthouse\nmodel: team-kling\nseed: 3\n")
    bad = cli(plugin_site, "estimate", str(sweep))
    assert bad.returncode == 2 and "team-kling: seed: not an input of team/kling-proxy/text-to-video" in bad.stderr
    assert "team-kling" not in cli(Path("/nonexistent"), "models").stdout  # without the package: not there
