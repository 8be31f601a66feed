"""Notebooks that run themselves: every template in notebooks/ executes in a real ipykernel kernel
(papermill) against the emulator, run_grid tags every run with its notebook, and no secret ever
reaches an executed notebook.

Each kernel starts its own emulator (the tests hide theirs) configured by the templates'
``emulator_*`` parameters, as a ``kling-lab notebooks run`` would. Every kernel test runs with a
recognisable FAL_KEY in the environment and checks it is in no output notebook.
"""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from templates import write_template

import kling_lab as kl
from kling_lab.errors import InvalidInput
from kling_lab.notebooks.grid import load_grid, notebook_name, run_grid
from kling_lab.notebooks.leaks import REDACTED, SecretLeakError
from kling_lab.notebooks.template_helpers import backend_options, pick_sweep, simulate_votes, sweeps

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "notebooks"
# A fal-key-shaped value (uuid:32 hex), made at run time so no key-like literal is committed.
KEY = f"{uuid.uuid4()}:{secrets.token_hex(16)}"
FAST = {"emulator_render_scale": 0.25, "emulator_queue_delay_s": 0.05, "emulator_service_time_s": 0.1}


@pytest.fixture
def kernels(emulator, monkeypatch):
    """A FAL_KEY that must never reach a notebook; kernels that start their own emulator."""
    monkeypatch.setenv("FAL_KEY", KEY)
    monkeypatch.delenv("KLING_LAB_EMULATOR", raising=False)
    return KEY


def outputs(path: str | Path) -> list[dict]:
    return [o for cell in nbformat.read(str(path), 4).cells for o in cell.get("outputs", [])]


def shown(path: str | Path, mime: str) -> int:
    """How many outputs (display_data or a cell's value) show ``mime``."""
    shows = [o for o in outputs(path) if o["output_type"] in ("display_data", "execute_result")]
    return sum(mime in o.get("data", {}) for o in shows)


def printed(path: str | Path) -> str:
    return "".join(o.get("text", "") for o in outputs(path) if o["output_type"] == "stream")


def assert_no_key(directory: Path) -> None:
    notebooks = list(directory.rglob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        assert KEY not in path.read_text(), path


def run_template(name: str, params: dict, tmp_path: Path, store: Path) -> Path:
    summary = run_grid(TEMPLATES / f"{name}.ipynb", [params], tmp_path / "out", store=store, progress=False)
    (row,) = summary.to_dict("records")
    assert row["status"] == "ok", row["error"]
    assert not [o for o in outputs(row["notebook"]) if o["output_type"] == "error"]
    assert_no_key(tmp_path / "out")
    return Path(row["notebook"])


# -- every template, executed --------------------------------------------------------------------
def test_every_template_is_tested_here():
    assert sorted(p.stem for p in TEMPLATES.glob("*.ipynb")) == ["ab_test", "cfg_effect", "compare", "race", "sweep"]
    for path in TEMPLATES.glob("*.ipynb"):
        cells = nbformat.read(str(path), 4).cells
        assert [c for c in cells if "parameters" in c.metadata.get("tags", [])], path


@pytest.mark.slow
def test_sweep_grid_tags_every_run_with_its_notebook_in_one_store(kernels, tmp_path):
    """Also the failure path: a notebook that raises is reported, kept, and the grid goes on."""
    grid = [
        {"prompts": [p], "cfg_values": [0.2, 0.8], "repeats": 1, **FAST}
        for p in ("A red fox in snow", "A grey wolf at dusk", "A snowy owl")
    ]
    grid.insert(1, {"prompts": ["A broken request"], "cfg_values": [1.5], "repeats": 1, **FAST})
    store = tmp_path / "store"
    summary = run_grid(TEMPLATES / "sweep.ipynb", grid, tmp_path / "out", store=store, progress=False)

    assert list(summary["status"]) == ["ok", "failed", "ok", "ok"]
    assert "cfg_scale" in summary.loc[1, "error"] and Path(summary.loc[1, "notebook"]).is_file()
    assert any(o["output_type"] == "error" for o in outputs(summary.loc[1, "notebook"]))
    assert list(summary["runs"]) == [2, 0, 2, 2] and list(summary["usd"]) == [2.8, 0.0, 2.8, 2.8]
    assert len(list((tmp_path / "out").glob("sweep-*.ipynb"))) == 4
    assert pd.read_csv(tmp_path / "out" / "sweep-summary.csv").shape == (4, 7)
    assert (tmp_path / "out" / "sweep-summary.parquet").is_file()

    runs = kl.load_runs(store)
    assert len(runs) == 6 and (runs["status"] == "ok").all()
    for row in summary[summary["status"] == "ok"].itertuples():
        mine = runs[runs["notebook"] == row.notebook]
        assert len(mine) == 2
        assert {json.loads(p)["prompts"][0] for p in mine["params_json"]} == {json.loads(row.parameters)["prompts"][0]}
        assert json.loads(mine["params_json"].iloc[0]) == json.loads(row.parameters)
        assert shown(row.notebook, "image/png") >= 3 and shown(row.notebook, "text/html") >= 2
    assert_no_key(tmp_path / "out")


@pytest.mark.slow
def test_cfg_effect_template(kernels, tmp_path):
    path = run_template("cfg_effect", {"repeats": 2, "n_permutations": 200, **FAST}, tmp_path, tmp_path / "store")
    text = printed(path)
    assert "cfg_scale changed qc_motion by" in text and "negative_prompt changed qc_motion by" in text
    assert "cfg_scale changed the signature: runs at different settings are" in text
    assert shown(path, "image/png") == 3
    assert set(kl.load_runs(tmp_path / "store")["experiment"]) == {"cfg-effect", "negative-prompt-control"}


@pytest.mark.slow
def test_race_template(kernels, tmp_path):
    params = {"cfg_values": [0.2, 0.8], "min_difference": 1.0, "budget_usd": 60.0, **FAST}
    path = run_template("race", params, tmp_path, tmp_path / "store")
    text = printed(path)
    assert "race on qc_motion (higher is better), 4 arms" in text and "winner negative_prompt='', cfg_scale=0.8" in text
    assert "cfg_scale changed qc_motion by" in text and "cfg_scale matters more than run-to-run variation" in text
    assert "a fixed grid needs" in text
    assert shown(path, "image/png") == 1 and shown(path, "text/html") >= 1
    runs = kl.load_runs(tmp_path / "store")
    assert {json.loads(t)["race_round"] for t in runs["params_json"]} >= {1}
    assert runs["notebook"].notna().all()  # run_grid tags the race's rows with its notebook too


@pytest.mark.slow
def test_compare_template(kernels, tmp_path):
    store = tmp_path / "store"
    kl.run(
        kl.Sweep.grid("facets", prompt="A fox", cfg_scale=[0.2, 0.8], aspect_ratio=["16:9", "9:16"]),
        store=store,
        progress=False,
    )
    path = run_template("compare", {}, tmp_path, store)
    assert shown(path, "text/html") >= 1 and shown(path, "image/png") >= 3
    assert shown(path, "application/vnd.jupyter.widget-view+json") >= 1


@pytest.mark.slow
def test_ab_test_template_shows_real_and_simulated_votes_apart(kernels, tmp_path):
    store = tmp_path / "store"
    arms = kl.run(
        kl.Sweep.grid("arms", prompt="A fox", negative_prompt=["", "blur"], repeats=2), store=store, progress=False
    )
    path = run_template(
        "ab_test", {"sweep_id": arms.sweep_id, "simulate_votes": 4, "simulate_favourite": "blur"}, tmp_path, store
    )
    assert "SIMULATED: 4 random votes, not real judgements" in printed(path)
    assert shown(path, "image/png") == 2 and shown(path, "text/html") >= 1
    assert shown(path, "application/vnd.jupyter.widget-view+json") >= 1
    from kling_lab.views import load_votes

    assert load_votes(store).empty  # simulated votes never reach the user's store


# -- secrets -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_template_that_prints_the_key_is_redacted_and_stops_the_grid(kernels, tmp_path):
    leaky = write_template(tmp_path / "leaky.ipynb", 'label = "x"', 'import os\nprint(os.environ["FAL_KEY"])')
    with pytest.raises(SecretLeakError, match=r"\$FAL_KEY"):
        run_grid(leaky, {"label": ["a", "b"]}, tmp_path / "out", progress=False)
    (written,) = (tmp_path / "out").glob("*.ipynb")  # the second notebook never ran
    assert KEY not in written.read_text() and REDACTED in written.read_text()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"fal_key": "anything"}, "names like key/token/secret are refused"),
        ({"prompts": [f"fox {KEY}"]}, r"holds the value of \$FAL_KEY"),
        ({"no_such_parameter": 1}, "unknown parameter 'no_such_parameter'; the template's parameters: name, prompts"),
    ],
)
def test_refused_before_any_kernel_starts(monkeypatch, tmp_path, params, message):
    monkeypatch.setenv("FAL_KEY", KEY)
    with pytest.raises(InvalidInput, match=message):
        run_grid(TEMPLATES / "sweep.ipynb", [params], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


# -- the pieces ----------------------------------------------------------------------------------
def test_grids_from_lists_products_and_yaml(tmp_path):
    assert load_grid(None) == [{}]
    assert load_grid([{"a": 1}, {"a": 2}]) == [{"a": 1}, {"a": 2}]
    assert load_grid({"a": [1, 2], "b": [[0.1, 0.9]]}) == [{"a": 1, "b": [0.1, 0.9]}, {"a": 2, "b": [0.1, 0.9]}]
    path = tmp_path / "grid.yaml"
    path.write_text("cfg_values: [[0.25, 0.75], [0.1, 0.9]]\nrepeats: [2]\n")
    assert load_grid(path) == [{"cfg_values": [0.25, 0.75], "repeats": 2}, {"cfg_values": [0.1, 0.9], "repeats": 2}]


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"repeats": 2}, r"grid.repeats: must be a non-empty list of values \(write \[2\]"),
        ([{"a": 1}, {"a": 1}], "parameter set #1 repeats #0"),
        ([1, 2], r"grid\[0\]: must be a mapping"),
        ("missing.yaml", "no such grid file"),
    ],
)
def test_bad_grids_are_explained(grid, message):
    with pytest.raises(InvalidInput, match=message):
        load_grid(grid)


def test_notebook_names_show_what_varies_and_never_collide():
    a = notebook_name("sweep", {"cfg_values": [0.1, 0.9], "repeats": 2}, shown=["cfg_values"])
    b = notebook_name("sweep", {"cfg_values": [0.1, 0.9], "repeats": 3}, shown=["cfg_values"])
    assert a.startswith("sweep-cfg_values-0.1-0.9-") and a.endswith(".ipynb") and a != b
    assert notebook_name("sweep", {}) == "sweep.ipynb"
    assert "/" not in notebook_name("sweep", {"prompt": "a/b: c?"})


def test_pick_sweep_defaults_to_the_last_one_logged():
    runs = pd.DataFrame(
        {
            "sweep_id": ["s1", "s1", "s2"],
            "experiment": ["a", "a", "b"],
            "run_id": ["1", "2", "3"],
            "status": ["ok", "failed", "ok"],
            "cost_usd": [1.4, 0.0, 1.4],
            "logged_at": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03"], utc=True),
        }
    )
    assert list(pick_sweep(runs)["run_id"]) == ["3"]
    assert list(pick_sweep(runs, "s1")["run_id"]) == ["1", "2"]
    assert list(sweeps(runs).index) == ["s2", "s1"] and sweeps(runs).loc["s1", "ok"] == 1
    with pytest.raises(InvalidInput, match="no sweep 'nope'"):
        pick_sweep(runs, "nope")
    with pytest.raises(InvalidInput, match="no runs in this store yet"):
        pick_sweep(runs.iloc[:0])


def test_backend_options_configure_only_an_emulator_this_kernel_starts(emulator, monkeypatch):
    assert backend_options("fal", emulator_render_scale=0.25) == {}
    monkeypatch.setenv("KLING_LAB_EMULATOR", "127.0.0.1:9")  # someone else's emulator: configure it there
    assert backend_options("emulator", emulator_render_scale=0.25) == {}
    monkeypatch.delenv("KLING_LAB_EMULATOR")
    config = backend_options("emulator", emulator_render_scale=0.25)["config"]
    assert config.render_scale == 0.25 and config.service_time_s == 3.0  # unset: the emulator's default


def test_simulated_votes_stay_out_of_the_store(emulator, tmp_path):
    store = tmp_path / "store"
    runs = kl.run(
        kl.Sweep.grid("arms", prompt="A fox", negative_prompt=["", "blur"], repeats=2), store=store, progress=False
    ).frame()
    votes = simulate_votes(runs, n=10, seed=1, favourite="blur", preference=1.0)
    assert len(votes) == 4 and set(votes["voter"]) == {"simulated"}  # 2 x 2 runs make 4 pairs
    wins = [(v.left_arm if v.choice == "left" else v.right_arm) for v in votes.itertuples()]
    assert wins == ["blur"] * 4
    from kling_lab.views import load_votes

    assert load_votes(store).empty
