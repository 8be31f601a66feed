"""``kling-lab notebooks run``: parameters from -p and --grid, one summary line per notebook, exit 0/1."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest
from templates import greeting_template

from kling_lab.cli import notebooks as cli_notebooks
from kling_lab.cli.notebooks import parse_value
from kling_lab.errors import InvalidInput
from kling_lab.notebooks import grid as notebooks


def run_cli(*argv: str) -> int:
    """Parse and run through ``add_parser`` as ``kling_lab.cli`` does for its extra command modules."""
    parser = argparse.ArgumentParser(prog="kling-lab")
    cli_notebooks.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["notebooks", "run", *argv])
    return args.func(args)


@pytest.mark.parametrize(
    "text, value",
    [
        ("2", 2),
        ("0.5", 0.5),
        ("[0.25, 0.75]", [0.25, 0.75]),
        ("null", None),
        ("true", True),
        ("A red fox", "A red fox"),
        ("yes", "yes"),
        ('"7"', "7"),
    ],
)
def test_parameter_values_are_json_when_they_parse(text, value):
    assert parse_value(text) == value


@pytest.mark.slow
def test_all_ran_exits_0_and_prints_the_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    template = greeting_template(tmp_path / "greet.ipynb")
    assert run_cli(str(template), "-p", "greeting", "hi there", "--no-progress") == 0
    out = capsys.readouterr().out
    assert "experiments/greet/greet-greeting-hi-there-" in out and " ok " in out
    assert "1 of 1 notebooks ran; 0 runs, $0.00; summary in experiments/greet" in out
    (notebook,) = (tmp_path / "experiments" / "greet").glob("greet-*.ipynb")
    assert "hi there" in notebook.read_text()


@pytest.mark.slow
def test_a_failed_notebook_exits_1_and_the_grid_goes_on(tmp_path, capsys):
    template = greeting_template(tmp_path / "greet.ipynb")
    grid = tmp_path / "greetings.yaml"
    grid.write_text("greeting: [boom, hello]\n")
    assert run_cli(str(template), "--grid", str(grid), "--out", str(tmp_path / "out"), "--no-progress") == 1
    out = capsys.readouterr().out
    assert "failed" in out and "RuntimeError: boom on purpose" in out
    assert "1 of 2 notebooks ran" in out
    assert len(list((tmp_path / "out").glob("greet-*.ipynb"))) == 2


def test_p_applies_to_every_set_of_the_grid_and_overrides_it(tmp_path, monkeypatch, capsys):
    grid = tmp_path / "g.yaml"
    grid.write_text("cfg_values: [[0.1, 0.9], [0.25, 0.75]]\nrepeats: [2]\n")
    seen = {}

    def fake_run_grid(template, sets, out, **options):
        seen.update(sets=sets, out=out, options=options)
        return pd.DataFrame(
            {
                "notebook": [str(tmp_path / "a.ipynb")],
                "parameters": ["{}"],
                "status": ["ok"],
                "error": [None],
                "seconds": [1.0],
                "runs": [0],
                "usd": [0.0],
            }
        )

    monkeypatch.setattr(notebooks, "run_grid", fake_run_grid)
    assert (
        run_cli(
            "t.ipynb",
            "--grid",
            str(grid),
            "-p",
            "repeats",
            "3",
            "-p",
            "budget_usd",
            "2.5",
            "--store",
            "s",
            "--timeout",
            "60",
        )
        == 0
    )
    assert seen["sets"] == [
        {"cfg_values": [0.1, 0.9], "repeats": 3, "budget_usd": 2.5},
        {"cfg_values": [0.25, 0.75], "repeats": 3, "budget_usd": 2.5},
    ]
    assert str(seen["out"]) == "experiments/g"  # named after the grid file
    assert seen["options"] == {"store": "s", "kernel_name": "python3", "progress": True, "timeout_s": 60.0}


def test_an_unknown_parameter_is_refused_before_running(tmp_path):
    template = greeting_template(tmp_path / "greet.ipynb")
    with pytest.raises(InvalidInput, match="unknown parameter 'colour'"):
        run_cli(str(template), "-p", "colour", "red", "--out", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
