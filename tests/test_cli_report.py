"""``kling-lab report``: the most recent sweep by default, --sweep, and clear errors."""

from __future__ import annotations

import argparse

import pytest
from views_helpers import sweep_into

from kling_lab.cli import app as cli


def parse(argv: list[str]) -> argparse.Namespace:
    return cli.build_parser().parse_args(["report", *argv])  # the real parser: a lost registration fails


@pytest.fixture(scope="module")
def store(tmp_path_factory, emulator_session):
    root = tmp_path_factory.mktemp("cli") / "kling_runs"
    first = sweep_into(emulator_session, root, "first", cfg_scale=[0.2, 0.8])
    second = sweep_into(emulator_session, root, "second", cfg_scale=0.5, aspect_ratio=["16:9", "1:1"])
    return root, first["sweep_id"].iloc[0], second["sweep_id"].iloc[0]


def test_default_is_the_most_recent_sweep(store, tmp_path, capsys):
    root, _, second = store
    out = tmp_path / "r.html"
    args = parse(["--store", str(root), "-o", str(out), "--cols", "aspect_ratio"])
    assert args.func(args) == 0
    assert f"2 runs of sweep {second}" in capsys.readouterr().out
    assert out.is_file() and second in out.read_text()


def test_named_sweep_copy_videos_and_facets(store, tmp_path):
    root, first, _ = store
    out = tmp_path / "first.html"
    args = parse(
        [
            "--store",
            str(root),
            "--sweep",
            first,
            "-o",
            str(out),
            "--rows",
            "cfg_scale",
            "--cols",
            "",
            "--copy-videos",
            "--title",
            "First sweep",
        ]
    )
    assert args.func(args) == 0
    assert "First sweep" in out.read_text() and len(list((tmp_path / "first_files").glob("*.mp4"))) == 2


def test_unknown_sweep_and_empty_store_exit_2(store, tmp_path, capsys):
    root, _first, _ = store
    assert cli.main(["report", "--store", str(root), "--sweep", "nope", "-o", str(tmp_path / "x.html")]) == 2
    assert "no sweep 'nope'" in capsys.readouterr().err and not (tmp_path / "x.html").exists()
    assert cli.main(["report", "--store", str(tmp_path / "empty"), "-o", str(tmp_path / "y.html")]) == 2
    assert "no runs" in capsys.readouterr().err
