"""DuckDB over a local store: the runs view de-duplicates and prefers the newest revision."""

from datetime import UTC, datetime

import pytest

from kling_lab.store.query import query
from kling_lab.store.run_store import RunStore

T0 = datetime(2026, 11, 2, tzinfo=UTC)


def row(i, **extra):
    return {
        "run_id": f"r{i}",
        "status": "ok",
        "cost_usd": 1.4,
        "experiment": "e",
        "cfg_scale": 0.1 * i,
        "logged_at": T0,
        **extra,
    }


def test_group_by_over_parts(tmp_path):
    store = RunStore(tmp_path)
    for i in range(5):
        store.append([row(i, experiment="a" if i < 3 else "b")])
    df = query("select experiment, count(*) n, sum(cost_usd) usd from runs group by 1 order by 1", store)
    assert df["n"].tolist() == [3, 2] and df["usd"].tolist() == pytest.approx([4.2, 2.8])


def test_newest_revision_wins_and_duplicates_count_once(tmp_path):
    store = RunStore(tmp_path)
    store.append([row(1)])
    store.append([row(1)])  # the same row twice (an instant of a compaction)
    store.append([row(2), row(2, qc_motion=4.0, revised_at=T0)])
    df = query("select run_id, qc_motion from runs order by run_id", store)
    assert df["run_id"].tolist() == ["r1", "r2"]
    assert df.loc[1, "qc_motion"] == 4.0
    assert len(store.load()) == 2 and store.load().set_index("run_id").loc["r2", "qc_motion"] == 4.0


def test_empty_store_has_empty_views(tmp_path):
    assert query("select count(*) as n from runs", tmp_path / "none")["n"].tolist() == [0]


def test_projection_reads_in_place(tmp_path):
    store = RunStore(tmp_path)
    store.append([row(i) for i in range(100)])
    assert query("select sum(cost_usd) s from runs", store)["s"][0] == pytest.approx(140.0)
