"""``kl.query`` / ``kling-lab query``: SQL errors are one line (never retried as "the store kept
changing"), DuckDB reads only the store unless file access is asked for, and control characters
in stored values never reach the terminal raw."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kling_lab.cli.app import main
from kling_lab.errors import InvalidInput
from kling_lab.store import query as query_module
from kling_lab.store.query import query
from kling_lab.store.run_store import RunStore

T0 = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path / "store")
    store.append([{"run_id": f"r{i}", "status": "ok", "cost_usd": 1.4, "logged_at": T0} for i in range(3)])
    return store


@pytest.fixture
def count_connects(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = query_module.connect

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(query_module, "connect", counting)
    return calls


SQL_ERRORS = {
    "failed-cast": ("select cast(status as integer) from runs", "Conversion"),
    "overflow": ("select 9223372036854775807 * 2 as x from runs", "Overflow"),
    "empty-statement": ("", "no SQL statement"),
    "only-a-semicolon": ("  ; ", "no SQL statement"),
    "division-by-zero": ("select 1 // 0 as x from runs", "Division by zero"),
    "missing-file": ("select * from read_parquet('/nonexistent/x.parquet')", "/nonexistent/x.parquet"),
}


@pytest.mark.parametrize("case", sorted(SQL_ERRORS))
def test_sql_errors_are_one_line_and_not_retried(case, store, count_connects):
    sql, says = SQL_ERRORS[case]
    with pytest.raises(InvalidInput) as info:
        query(sql, store)
    message = str(info.value)
    assert says in message and "\n" not in message and "kept changing" not in message
    assert len(count_connects) <= 1  # not retried (an empty statement is refused before connecting)


@pytest.mark.parametrize("case", sorted(SQL_ERRORS))
def test_cli_sql_errors_exit_2_with_one_line(case, store, capsys):
    assert main(["query", SQL_ERRORS[case][0], "--store", str(store.root)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("kling-lab: error: SQL")


def test_a_missing_file_is_one_line_with_file_access_too(store, count_connects):
    with pytest.raises(InvalidInput, match="nonexistent"):
        query("select * from read_parquet('/nonexistent/x.parquet')", store, allow_file_access=True)
    assert len(count_connects) == 1


ESCAPES = [
    "select * from read_text('/etc/passwd')",
    "select * from read_csv('/etc/hostname')",
    "select * from glob('/etc/*')",
    "attach '{tmp}/escape.db' as other",
    "set enable_external_access = true",
    "install httpfs",
]


@pytest.mark.parametrize("sql", ESCAPES)
def test_duckdb_cannot_read_outside_the_store_by_default(sql, store, tmp_path):
    with pytest.raises(InvalidInput, match="SQL"):
        query(sql.format(tmp=tmp_path), store)
    assert not (tmp_path / "escape.db").exists()


def test_duckdb_cannot_write_files_by_default(store, tmp_path):
    for target in (tmp_path / "out.csv", store.root / "runs" / "evil.parquet"):
        with pytest.raises(InvalidInput, match="SQL"):
            query(f"copy (select * from runs) to '{target}'", store)
        assert not target.exists()
    assert len(store.part_files()) == 1


def test_the_store_is_still_fully_queryable_in_the_sandbox(store):
    assert query("select count(*) as n, sum(cost_usd) as usd from runs", store).to_dict("records") == [
        {"n": 3, "usd": pytest.approx(4.2)}
    ]


def test_file_access_is_an_explicit_opt_out(store, tmp_path):
    (tmp_path / "note.txt").write_text("hello from disk")
    df = query(f"select content from read_text('{tmp_path / 'note.txt'}')", store, allow_file_access=True)
    assert df["content"].tolist() == ["hello from disk"]
    out = tmp_path / "runs.csv"
    assert main(["query", f"copy (select run_id from runs) to '{out}'", "--store", str(store.root)]) == 2
    assert not out.exists()
    assert (
        main(["query", f"copy (select run_id from runs) to '{out}'", "--store", str(store.root), "--allow-file-access"])
        == 0
    )
    assert out.read_text().splitlines()[0] == "run_id"


def test_query_output_escapes_control_characters(tmp_path, capsys):
    store = RunStore(tmp_path / "s")
    store.append([{"run_id": "r1", "status": "ok", "prompt": "fox\x1b[2J\x1b]0;pwned\x07\x00end", "logged_at": T0}])
    assert main(["query", "select prompt from runs", "--store", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\x00" not in out
    assert "fox\\x1b[2J" in out


def test_runs_table_escapes_control_characters(tmp_path, capsys):
    store = RunStore(tmp_path / "s")
    store.append(
        [
            {
                "run_id": "r1",
                "status": "ok",
                "experiment": "e\x1b[31m",
                "negative_prompt": "n\x07",
                "logged_at": T0,
                "cost_usd": 0.0,
                "cfg_scale": 0.5,
                "repeat": 0,
            }
        ]
    )
    assert main(["runs", "--store", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
