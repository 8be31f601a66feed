"""kling-lab query / compact / sync on local stores (the S3 forms are in test_shared_store.py)."""

from datetime import UTC, datetime

from kling_lab.cli.app import main
from kling_lab.store.run_store import RunStore


def row(i):
    return {
        "run_id": f"r{i}",
        "status": "ok",
        "cost_usd": 1.4,
        "experiment": "e",
        "user": "ana",
        "logged_at": datetime(2026, 11, 2, tzinfo=UTC),
    }


def test_query_compact_sync(tmp_path, capsys):
    store = RunStore(tmp_path / "a")
    for i in range(5):
        store.append([row(i)])
    assert main(["query", "select user, sum(cost_usd) as usd from runs group by 1", "--store", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert "ana" in out and "7.0" in out
    assert main(["compact", "--store", str(store.root)]) == 0
    assert "runs: merged 5 files" in capsys.readouterr().out
    assert len(store.part_files()) == 1
    assert main(["sync", str(store.root), str(tmp_path / "b")]) == 0
    assert "copied 5 runs rows" in capsys.readouterr().out
    assert main(["sync", str(store.root), str(tmp_path / "b")]) == 0
    assert "copied 0 runs rows" in capsys.readouterr().out
    assert len(RunStore(tmp_path / "b").load()) == 5


def test_query_error_is_one_line_exit_2(tmp_path, capsys):
    RunStore(tmp_path).append([row(1)])
    code = main(["query", "select nope from runs", "--store", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("kling-lab: error:") and "nope" in err
