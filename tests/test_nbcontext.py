"""The environment run_grid gives a kernel tags every run made inside it."""

import json

import pytest

import kling_lab as kl
from kling_lab.runner.notebook_env import NOTEBOOK_ENV, PARAMS_ENV, kernel_env, notebook_params, with_notebook_defaults
from kling_lab.store.run_store import STORE_ENV


def test_kernel_env_names_the_notebook_its_parameters_and_the_store():
    env = kernel_env("/x/out.ipynb", {"cfg": [0.1, 0.9], "name": "a"}, "/x/store")
    assert env == {NOTEBOOK_ENV: "/x/out.ipynb", PARAMS_ENV: '{"cfg": [0.1, 0.9], "name": "a"}', STORE_ENV: "/x/store"}
    assert STORE_ENV not in kernel_env("/x/out.ipynb", {})


def test_outside_a_grid_options_are_unchanged(monkeypatch):
    monkeypatch.delenv(NOTEBOOK_ENV, raising=False)
    monkeypatch.delenv(PARAMS_ENV, raising=False)
    options = {"tags": {"owner": "ana"}, "concurrency": 2}
    assert with_notebook_defaults(options) == options
    assert notebook_params() == {}


def test_inside_a_grid_notebook_and_parameters_become_defaults(monkeypatch):
    monkeypatch.setenv(NOTEBOOK_ENV, "/x/out.ipynb")
    monkeypatch.setenv(PARAMS_ENV, json.dumps({"cfg": 0.5, "owner": "grid"}))
    merged = with_notebook_defaults({"tags": {"owner": "ana"}})
    assert merged["notebook"] == "/x/out.ipynb"
    assert merged["tags"] == {"cfg": 0.5, "owner": "ana"}  # explicit tags win
    assert with_notebook_defaults({"notebook": "mine.ipynb"})["notebook"] == "mine.ipynb"


def test_malformed_parameters_say_which_variable(monkeypatch):
    monkeypatch.setenv(PARAMS_ENV, "[1, 2]")
    with pytest.raises(ValueError, match=PARAMS_ENV):
        notebook_params()


def test_run_tags_its_rows_from_the_environment(emulator, monkeypatch, tmp_path):
    """Needs ``make_runner`` to apply :func:`with_notebook_defaults` (see the api.py change)."""
    monkeypatch.setenv(NOTEBOOK_ENV, "/x/out.ipynb")
    monkeypatch.setenv(PARAMS_ENV, json.dumps({"cfg_values": [0.2]}))
    sweep = kl.Sweep.grid("tagged", prompt="A fox", cfg_scale=0.2, tags={"owner": "ana"})
    result = kl.run(sweep, store=tmp_path / "store", progress=False)
    (row,) = result.rows
    assert row["notebook"] == "/x/out.ipynb"
    assert json.loads(row["params_json"]) == {"cfg_values": [0.2], "owner": "ana"}
