"""``kling-lab run FILE --race METRIC``: a race from the command line, and its bad input (exit 2, one line,
nothing submitted or written)."""

from __future__ import annotations

import contextlib
import json

import pytest

from kling_lab.cli.app import main
from kling_lab.store.run_store import load_runs

SWEEP = "name: cli-race\nprompt: a glass of water on a table\ngrid:\n  cfg_scale: [0.1, 0.5, 0.9]\n"


def test_a_race_from_the_command_line(emulator, tmp_path, capsys):
    sweep = tmp_path / "race.yaml"
    sweep.write_text(SWEEP)
    store = tmp_path / "store"
    args = ["run", str(sweep), "--store", str(store), "--no-progress", "--race", "qc_motion", "--lower-is-better"]
    assert main([*args, "--max-repeats", "4"]) == 0
    out = capsys.readouterr().out
    assert "race on qc_motion (lower is better), 3 arms" in out and "winner cfg_scale=0.1" in out
    assert "saved $" in out
    tags = [json.loads(t) for t in load_runs(store)["params_json"]]
    assert {t["race_metric"] for t in tags} == {"qc_motion"} and {t["race_round"] for t in tags} >= {1}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--race", "qc_nope", "--higher-is-better"], "metric 'qc_nope' is not a numeric run-log column"),
        (["--race", "qc_motion"], "--race needs --higher-is-better or --lower-is-better"),
        (["--race", "qc_motion", "--higher-is-better", "--confidence", "1.5"], "confidence must be a number between"),
        (["--race", "qc_motion", "--higher-is-better", "--max-cost", "5"], "is smaller than the race's first round"),
        (["--higher-is-better"], "--higher-is-better is an option of a race: add --race METRIC"),
        (["--min-difference", "0.3"], "--min-difference is an option of a race"),
        (["--race", "qc_motion", "--higher-is-better", "--lower-is-better"], "not allowed with argument"),
    ],
)
def test_bad_race_input_exits_2_with_one_line(emulator, tmp_path, capsys, extra, message):
    sweep = tmp_path / "race.yaml"
    sweep.write_text(SWEEP)
    store = tmp_path / "store"
    with pytest.raises(SystemExit) if "not allowed" in message else contextlib.nullcontext():
        assert main(["run", str(sweep), "--store", str(store), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kling-lab: error:") and message in err and "\n" not in err
    assert emulator.stats()["submissions"] == 0 and not (store / "runs").exists()


def test_a_race_over_one_arm_exits_2(emulator, tmp_path, capsys):
    sweep = tmp_path / "one.yaml"
    sweep.write_text("name: one\nprompt: a cat\nrepeats: 3\n")
    assert main(["run", str(sweep), "--store", str(tmp_path / "s"), "--race", "qc_motion", "--higher-is-better"]) == 2
    assert "a race needs at least two arms" in capsys.readouterr().err
    assert emulator.stats()["submissions"] == 0
