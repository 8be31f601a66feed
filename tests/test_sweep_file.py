"""The sweep file as a pydantic model: one-line errors naming the key, and a JSON Schema editors can use."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from kling_lab.cli.app import main
from kling_lab.errors import SweepFileError
from kling_lab.sweep import Sweep
from kling_lab.sweep_file import sweep_file_schema

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: 3\nprompt: a\n", "name: must be a non-empty string; got 3"),
        ("name: ''\nprompt: a\n", "name: must be a non-empty string; got ''"),
        ("name: x\nprompt: a\nrequests: []\n", "requests: must list at least one request"),
        ("name: x\nprompt: a\nrequests: [3]\n", "requests[0]: must be a mapping of inputs"),
        ("name: x\nprompt: a\nrepeats: true\n", "repeats: must be a positive integer; got True"),
        ("name: x\nprompt: a\nrepeats: 1.5\n", "repeats: must be a positive integer; got 1.5"),
        ("name: x\nprompt: a\ntags: [1]\n", "tags: must be a mapping"),
        ("name: x\nprompt: a\ngrid: {cfg_scale: []}\n", "grid.cfg_scale: must be a non-empty list of values"),
        ("name: x\nprompt: a\nzip: {sead: [1]}\n", "zip.sead: unknown input"),
        ("name: x\nprompts: [a]\n", "prompts: unknown key; allowed keys: name, description"),
    ],
)
def test_structure_errors_are_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SweepFileError) as info:
        Sweep.from_yaml(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_schema_command_prints_a_schema_the_shipped_sweeps_satisfy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == sweep_file_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == [], path


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "x", "prompt": "a", "grid": {"cfg_scale": [1.5]}},  # out of the request's range
        {"name": "x", "prompt": "a", "aspect_ratio": "4:3"},
        {"name": "x", "prompt": "a", "grid": {"cfg": [0.5]}},
        {"name": "x", "prompt": "a", "color": "red"},
        {"name": "x", "prompt": "a", "requests": []},
    ],
)
def test_the_schema_rejects_what_the_loader_rejects(bad: dict) -> None:
    validator = jsonschema.Draft202012Validator(sweep_file_schema())
    assert list(validator.iter_errors(bad))
