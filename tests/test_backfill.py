"""backfill: probe/QC columns for a store logged without them (revisions appended), and its CLI command."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from kling_lab.backends.emulator import EmulatorConfig, EmulatorServer
from kling_lab.cli.app import build_parser, main
from kling_lab.media.hook import default_media_hook
from kling_lab.runner.api import run
from kling_lab.store.backfill import MEDIA_COLUMNS, backfill
from kling_lab.store.run_store import RunStore, load_runs
from kling_lab.sweep import Sweep
from kling_lab.util.clock import utcnow

QUICKSTART = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.yaml"
SWEEP = Sweep.grid("pre-qc", prompt="a lighthouse at dusk", cfg_scale=[0.2, 0.8], aspect_ratio=["16:9", "1:1"])
MEDIA = list(MEDIA_COLUMNS)


@pytest.fixture(scope="module")
def pre_qc_template(emulator_session: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store as a version before QC wrote it: 4 ok runs with videos, then 4 cache hits of them, no media columns."""
    emulator_session.reset(EmulatorConfig(queue_delay_s=0.05, service_time_s=0.1, render_scale=0.25, concurrency=8))
    store = RunStore(tmp_path_factory.mktemp("backfill") / "store")
    assert run(SWEEP, store=store, progress=False, media_hook=None).count("ok") == 4
    assert run(SWEEP, store=store, progress=False, media_hook=None).cache_hits == 4
    return store.root


@pytest.fixture
def pre_qc(pre_qc_template: Path, tmp_path: Path) -> RunStore:
    """A fresh copy of the pre-QC store for one test."""
    return RunStore(shutil.copytree(pre_qc_template, tmp_path / "store"))


def revise(store: RunStore, run_id: str, **columns) -> None:
    """Append a new revision of one row with ``columns`` changed (as another writer would)."""
    row = next(r for r in store.iter_rows() if r["run_id"] == run_id)
    store.append([{**row, **columns, "revised_at": utcnow()}])


def test_fills_every_ok_row_measuring_each_video_once_then_finds_nothing(pre_qc: RunStore) -> None:
    before = load_runs(pre_qc)
    assert len(before) == 8 and (before["status"] == "ok").all()
    assert before[MEDIA].isna().all().all()
    measured: list[str] = []

    def counting_hook(path: str) -> dict:
        measured.append(path)
        return default_media_hook(path)

    assert backfill(pre_qc, progress=False, media_hook=counting_hook) == 8
    assert len(measured) == len(set(measured)) == 4  # a cache hit shares its source's video
    after = load_runs(pre_qc)
    assert sorted(after["run_id"]) == sorted(before["run_id"])  # revisions replace rows, never add any
    assert after[MEDIA].notna().all().all() and after["revised_at"].notna().all()
    assert set(after["codec"]) == {"h264"}
    assert set(zip(after["aspect_ratio"], after["width"], after["height"])) == {("16:9", 320, 180), ("1:1", 180, 180)}
    one = after.iloc[0]
    assert default_media_hook(one["video_path"]) == pytest.approx({c: one[c] for c in MEDIA})
    assert backfill(pre_qc, progress=False) == 0


def test_only_null_columns_are_filled_unless_forced(pre_qc: RunStore) -> None:
    first = load_runs(pre_qc).iloc[0]
    revise(pre_qc, first["run_id"], qc_motion=123.0)  # a row with one column already set
    assert backfill(pre_qc, progress=False) == 8
    df = load_runs(pre_qc).set_index("run_id")
    assert df.loc[first["run_id"], "qc_motion"] == 123.0
    assert df.drop(index=first["run_id"])["qc_motion"].between(0, 255).all()
    parts = len(pre_qc.part_files())
    assert backfill(pre_qc, progress=False, force=True) == 1  # only the row whose value differs
    assert load_runs(pre_qc).set_index("run_id").loc[first["run_id"], "qc_motion"] != 123.0
    assert backfill(pre_qc, progress=False, force=True) == 0
    assert len(pre_qc.part_files()) == parts + 1  # nothing written when nothing changed


def test_unreadable_video_is_skipped_with_a_warning_and_missing_one_silently(
    pre_qc: RunStore, caplog: pytest.LogCaptureFixture
) -> None:
    originals = load_runs(pre_qc)
    originals = originals[~originals["cache_hit"]]
    broken, gone = Path(originals["video_path"].iloc[0]), Path(originals["video_path"].iloc[1])
    broken.write_bytes(b"not a video at all" * 100)
    gone.unlink()
    with caplog.at_level(logging.WARNING, logger="kling_lab.store.backfill"):
        assert backfill(pre_qc, progress=False) == 4  # the two intact videos, each with its cache hit
    assert broken.stem in caplog.text and gone.stem not in caplog.text
    df = load_runs(pre_qc)
    unfilled = df[df["qc_motion"].isna()]
    assert set(unfilled["video_path"]) == {str(broken), str(gone)} and len(unfilled) == 4


def test_revisions_survive_compaction(pre_qc: RunStore) -> None:
    pre_qc.compact()
    assert backfill(pre_qc, progress=False) == 8
    assert pre_qc.compact() == 2  # the compacted log + the revisions
    df = load_runs(pre_qc)
    assert len(df) == 8 and df[MEDIA].notna().all().all()
    assert backfill(pre_qc, progress=False) == 0


def test_cli_command_prints_the_count_and_exits_0(pre_qc: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()  # the real parser: a lost registration fails here
    args = parser.parse_args(["backfill", "--store", str(pre_qc.root)])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "8 rows updated" in captured.out and "backfill" in captured.err  # tqdm's bar on stderr
    args = parser.parse_args(["backfill", "--store", str(pre_qc.root), "--force", "--no-progress"])
    assert args.func(args) == 0
    assert "0 rows updated" in capsys.readouterr().out


def test_kling_lab_backfill_command(pre_qc: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backfill", "--store", str(pre_qc.root), "--no-progress"]) == 0
    assert "8 rows updated" in capsys.readouterr().out


def test_quickstart_log_has_probe_and_qc_for_every_ok_row(emulator, tmp_path: Path) -> None:
    store = RunStore(tmp_path / "quickstart")
    assert run(QUICKSTART, store=store, progress=False, concurrency=8).count("ok") == 12
    ok = load_runs(store).query("status == 'ok'")
    assert len(ok) == 12
    assert ok[MEDIA].notna().all().all()
    assert backfill(store, progress=False) == 0
