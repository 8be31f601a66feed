"""RunStore: atomic parquet parts, typed load, compaction, de-duplication. Real files."""

from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kling_lab.store.run_store import RunStore, load_runs
from kling_lab.store.schema import RUN_SCHEMA


def row(i: int, **extra):
    return {
        "run_id": f"r{i}",
        "sweep_id": "s",
        "experiment": "e",
        "sweep_index": i,
        "fingerprint": f"f{i}",
        "endpoint": "fal-ai/kling-video/v2/master/text-to-video",
        "backend": "emulator",
        "status": "ok",
        "prompt": "p",
        "negative_prompt": "",
        "cfg_scale": 0.5,
        "aspect_ratio": "16:9",
        "duration_s": 5,
        "repeat": 0,
        "cost_usd": 1.4,
        "logged_at": datetime(2026, 1, 1, 0, 0, i, tzinfo=UTC),
        **extra,
    }


def test_append_writes_one_file_per_batch_and_nothing_left_in_tmp(tmp_path):
    store = RunStore(tmp_path)
    store.append([row(1), row(2)])
    store.append([row(3)])
    assert len(store.part_files()) == 2
    assert list(store.tmp_dir.iterdir()) == []


def test_load_is_typed_and_utc(tmp_path):
    store = RunStore(tmp_path)
    store.append([row(1, video_path="videos/ab/x.mp4", video_bytes=10), row(2)])
    df = store.load()
    assert len(df) == 2
    assert str(df["logged_at"].dtype) == "datetime64[us, UTC]"
    assert df["cfg_scale"].dtype == "float64"
    assert isinstance(df["status"].dtype, pd.StringDtype)
    assert str(df["duration_s"].dtype) == "Int16"
    assert str(df["video_bytes"].dtype) == "Int64"
    assert str(df["cache_hit"].dtype) == "boolean"
    assert not any(df[c].dtype == object for c in df.columns)
    assert df.loc[0, "video_path"] == str(tmp_path.resolve() / "videos/ab/x.mp4")
    assert pd.isna(df.loc[1, "video_path"])


def test_dtypes_stable_across_files_with_different_nulls(tmp_path):
    store = RunStore(tmp_path)
    store.append([row(1)])
    store.append([row(2, width=1280, qc_motion=3.5, error=None)])
    df = store.load()
    assert str(df["width"].dtype) == "Int32"
    assert df["qc_motion"].isna().tolist() == [True, False]


def test_unknown_column_is_refused(tmp_path):
    with pytest.raises(KeyError, match="colour"):
        RunStore(tmp_path).append([row(1, colour="red")])
    assert RunStore(tmp_path).part_files() == []


def test_old_file_missing_new_columns_reads_as_null(tmp_path):
    store = RunStore(tmp_path)
    old_schema = pa.schema([f for f in RUN_SCHEMA if not f.name.startswith("qc_")])
    table = pa.Table.from_pylist([{k: v for k, v in row(1).items()}], schema=old_schema)
    store.runs_dir.mkdir(parents=True)
    pq.write_table(table, store.runs_dir / "part-old.parquet")
    df = store.load()
    assert len(df) == 1 and df["qc_motion"].isna().all()


def test_compact_keeps_every_row_once(tmp_path):
    store = RunStore(tmp_path)
    for i in range(10):
        store.append([row(i)])
    assert store.compact() == 10
    assert len(store.part_files()) == 1
    df = store.load()
    assert sorted(df["run_id"]) == sorted(f"r{i}" for i in range(10))


def test_duplicate_run_ids_are_read_once(tmp_path):
    # What a reader sees in the instant between compaction's write and its deletes.
    store = RunStore(tmp_path)
    store.append([row(1), row(2)])
    store.append([row(1), row(2)])
    assert len(store.load()) == 2


def test_load_runs_uses_env_store(tmp_path, monkeypatch):
    monkeypatch.setenv("KLING_LAB_STORE", str(tmp_path / "elsewhere"))
    RunStore().append([row(1)])
    assert len(load_runs()) == 1
    assert (tmp_path / "elsewhere" / "runs").is_dir()


def test_empty_store_loads_empty_typed_frame(tmp_path):
    df = RunStore(tmp_path / "none").load()
    assert df.empty and "cost_usd" in df.columns


def test_ingest_video_is_content_addressed(tmp_path):
    store = RunStore(tmp_path)
    a = store.new_tmp_path(".mp4")
    a.write_bytes(b"same")
    b = store.new_tmp_path(".mp4")
    b.write_bytes(b"same")
    rel1 = store.ingest_video(a, "ab" * 32)
    rel2 = store.ingest_video(b, "ab" * 32)
    assert rel1 == rel2 == f"videos/ab/{'ab' * 32}.mp4"
    assert (tmp_path / rel1).read_bytes() == b"same"
    assert not a.exists() and not b.exists()
