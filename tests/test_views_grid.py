"""The faceted grid spec shared by compare and report: cells, labels, filters, degraded cells."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from views_helpers import BLOCKED, PROMPT, standard_store, sweep_into

from kling_lab.errors import InvalidInput
from kling_lab.store.run_store import RunStore, load_runs
from kling_lab.views import values
from kling_lab.views.grid import build_grid, visible


class PathSource:
    """A Source that hands back the local paths (no server, no encoding)."""

    base = ""

    def video(self, path: Path) -> str:
        return f"file:{path.name}"

    def poster(self, path: Path) -> str | None:
        return None


@pytest.fixture(scope="module")
def store(tmp_path_factory, emulator_session) -> Path:
    root = tmp_path_factory.mktemp("grid") / "kling_runs"
    standard_store(emulator_session, root)
    return root


def grid_of(runs: pd.DataFrame, store: Path, **kwargs):
    return build_grid(runs, source=PathSource(), store=RunStore(store), **kwargs)


def test_cells_are_faceted_and_labelled(store):
    runs = load_runs(store)
    spec = grid_of(runs, store)
    assert [v["label"] for v in spec["row_values"]] == ["0.25", "0.75"]
    assert [v["label"] for v in spec["col_values"]] == ["16:9", "9:16"]
    assert len(spec["cells"]) == 10
    ok = [c for c in spec["cells"] if c["status"] == "ok"]
    assert len(ok) == 8 and all(c["src"].startswith("file:") and c["error"] is None for c in ok)
    cell = ok[0]
    # The title names only what differs between cells, never the facets the headers already show.
    assert "negative_prompt=" in cell["title"] and "cfg_scale=" not in cell["title"]
    assert "aspect_ratio=" not in cell["title"]
    assert cell["meta"].startswith("$1.40 · motion ")  # one line: cost and the headline metric
    assert cell["aspect"] in (round(16 / 9, 4), round(9 / 16, 4))
    facts = " | ".join(cell["facts"])
    assert "$1.40" in facts and "queue" in facts and "inference" in facts and "download" in facts
    assert "negative_prompt=" in facts and "repeat=0" in facts
    assert {name for name, _ in cell["metrics"]} >= {"motion", "flicker", "sharpness"}
    assert set(spec["metric_docs"]) >= {name for name, _ in cell["metrics"]}
    assert "10 runs" in spec["summary"] and "2 failed" in spec["summary"]


def test_failed_runs_are_labelled_empty_cells(store):
    spec = grid_of(load_runs(store), store)
    failed = [c for c in spec["cells"] if c["status"] == "failed"]
    assert len(failed) == 2
    for cell in failed:
        assert cell["src"] is None and cell["poster"] is None
        assert "content_policy" in cell["error"] and cell["prompt"] == BLOCKED


def test_filters_for_the_parameters_that_vary(store):
    spec = grid_of(load_runs(store), store)
    columns = [f["column"] for f in spec["filters"]]
    assert columns == ["prompt", "negative_prompt", "sweep_id"]  # cfg/aspect are facets; the rest is fixed
    assert spec["selection"] == {c: values.ALL for c in columns}
    negative = next(f for f in spec["filters"] if f["column"] == "negative_prompt")
    assert [o["label"] for o in negative["options"]] == ["(empty)", "blur, distort, and low quality"]
    assert len(visible(spec, spec["selection"])) == 10
    chosen = {**spec["selection"], "negative_prompt": values.key("")}
    assert len(visible(spec, chosen)) == 4  # the blocked sweep uses the default negative prompt
    spec2 = grid_of(load_runs(store), store, filters={"negative_prompt": ""})
    assert spec2["selection"]["negative_prompt"] == '""'


def test_bad_arguments_say_what_is_wrong(store):
    runs = load_runs(store)
    with pytest.raises(InvalidInput, match="unknown run-log column"):
        grid_of(runs, store, rows="nope")
    with pytest.raises(InvalidInput, match="does not vary"):
        grid_of(runs, store, filters={"duration_s": 5})
    with pytest.raises(InvalidInput, match="not in the data"):
        grid_of(runs, store, filters={"negative_prompt": "other"})
    with pytest.raises(InvalidInput, match="repeat must be"):
        grid_of(runs, store, repeat="all")


def test_empty_selection_is_a_message(store):
    spec = grid_of(load_runs(store).iloc[:0], store)
    assert spec["cells"] == [] and "empty" in spec["message"]
    assert grid_of(pd.DataFrame(), store)["message"]


def test_missing_video_and_null_metrics(store, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    runs = load_runs(copy)
    ok = runs[runs["status"] == "ok"]
    Path(ok["video_path"].iloc[0]).unlink()
    runs.loc[ok.index[1], ["qc_motion", "qc_flicker", "qc_sharpness"]] = float("nan")
    spec = grid_of(runs, copy)
    by_id = {c["run_id"]: c for c in spec["cells"]}
    gone = by_id[ok["run_id"].iloc[0]]
    assert gone["src"] is None and gone["missing"].startswith("video file missing")
    partial = by_id[ok["run_id"].iloc[1]]
    assert partial["src"]
    assert {name for name, _ in partial["metrics"]} == {"black frames", "frozen frames", "scene cuts"}


def test_repeat_select_offers_one_repeat_at_a_time(emulator, tmp_path):
    runs = sweep_into(emulator, tmp_path / "s", repeats=2, cfg_scale=0.5, aspect_ratio=["16:9", "1:1"])
    spec = grid_of(runs, tmp_path / "s", repeat="select")
    repeat = next(f for f in spec["filters"] if f["column"] == "repeat")
    assert repeat["all"] is False and spec["selection"]["repeat"] == "0"
    assert len(visible(spec, spec["selection"])) == 2
    stacked = grid_of(runs, tmp_path / "s")
    assert stacked["selection"]["repeat"] == values.ALL and len(visible(stacked, stacked["selection"])) == 4


def test_summary_words_emulator_money_like_the_cli(store):
    """Issue 15 item 6: the widget and the report said "$16.80 spent" for emulator runs."""
    spec = grid_of(load_runs(store), store)
    assert "at fal prices (emulator: nothing was spent)" in spec["summary"]
    assert " spent" not in spec["summary"].replace("nothing was spent", "")


def test_sort_and_ranges_by_any_numeric_column(store):
    runs = load_runs(store)
    runs["judge_score"] = range(len(runs))  # a column merged in by the user, e.g. a judge's score
    spec = grid_of(runs, store)
    columns = [s["column"] for s in spec["sortable"]]
    assert columns[:2] == ["qc_motion", "qc_flicker"] and "judge_score" in columns and "cost_usd" in columns
    assert "sweep_index" not in columns and "video_bytes" not in columns
    ok = [c for c in spec["cells"] if c["status"] == "ok"]
    ranked = visible(spec, spec["selection"], "-qc_motion")
    motions = [c["values"]["qc_motion"] for c in ranked if "qc_motion" in c["values"]]
    assert motions == sorted(motions, reverse=True) and len(motions) == len(ok)
    assert [c["status"] for c in ranked[-2:]] == ["failed", "failed"]  # no value: last
    middle = sorted(motions)[len(motions) // 2]
    kept = visible(spec, spec["selection"], "", {"qc_motion": [middle, None]})
    assert kept and all(c["values"]["qc_motion"] >= middle for c in kept) and len(kept) < len(ok)
    assert [c["values"]["judge_score"] for c in visible(spec, spec["selection"], "judge_score")] == sorted(
        c["values"]["judge_score"] for c in spec["cells"]
    )


def test_axis_values_keep_the_full_text_for_hover(emulator, tmp_path):
    long = "a red fox trotting through fresh snow at dawn, cinematic, golden light, slow dolly shot, 35 mm"
    runs = sweep_into(emulator, tmp_path / "s", prompt=[PROMPT, long], cfg_scale=0.5)
    spec = grid_of(runs, tmp_path / "s", rows="prompt", cols=None)
    labels = {v["full"]: v["label"] for v in spec["row_values"]}
    assert labels[long].endswith("…") and len(labels[long]) <= 60 and labels[PROMPT] == PROMPT
