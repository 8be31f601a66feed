"""Cross-model sweeps and image-to-video, end to end on the emulator through the CLI and the library:
the issue's "done when" scenarios, bad input exit 2 with nothing submitted, prices checked."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import kling_lab as kl
from kling_lab.cli.app import main
from kling_lab.models import Model
from kling_lab.store.run_store import RunStore, load_runs
from kling_lab.store.schema import RUN_SCHEMA

CROSS = """name: cross
prompt: unused
grid:
  model: [kling-2.0-master, kling-2.5-turbo-pro, veo-3-fast]
  prompt: ["A red fox trotting through fresh snow", "A lighthouse in a storm at night"]
repeats: 2
models:
  veo-3-fast: {duration: 4s, generate_audio: false}
"""


@pytest.fixture
def cross_sweep(tmp_path: Path) -> Path:
    path = tmp_path / "cross.yaml"
    path.write_text(CROSS)
    return path


def test_a_three_model_sweep_from_yaml_estimates_runs_and_compares(emulator, cross_sweep, tmp_path, capsys):
    assert main(["estimate", str(cross_sweep)]) == 0
    out = capsys.readouterr().out
    assert "12 requests" in out and "$8.60 if all succeed" in out  # 4 x 1.40 + 4 x 0.35 + 4 x 0.40
    for line in ("kling-2.0-master        4 requests  $5.60", "kling-2.5-turbo-pro     4 requests  $1.40"):
        assert line in out
    assert "veo-3-fast" in out and "$1.60" in out
    store = tmp_path / "store"
    assert main(["run", str(cross_sweep), "--store", str(store), "--no-progress"]) == 0
    df = load_runs(store)
    assert len(df) == 12 and set(df["status"]) == {"ok"}
    assert df.groupby("model")["cost_usd"].sum().round(2).to_dict() == {
        "kling-2.0-master": 5.60,
        "kling-2.5-turbo-pro": 1.40,
        "veo-3-fast": 1.60,
    }
    veo = df[df["model"] == "veo-3-fast"]
    assert set(veo["endpoint"]) == {"fal-ai/veo3/fast"} and veo["cfg_scale"].isna().all()
    assert set(veo["duration_s"]) == {4} and set(veo["generate_audio"]) == {False}
    assert all('"duration":"4s"' in a for a in veo["arguments_json"])
    assert set(emulator.stats()["jobs"].items()) >= {("ok", 12)}
    widget = kl.compare(df, rows="model", cols="prompt")
    assert widget is not None
    result = kl.effect(df, param="model", metric="qc_motion")
    assert set(result.levels) == {"kling-2.0-master", "kling-2.5-turbo-pro", "veo-3-fast"}
    table = kl.model_table(df)
    assert list(table.index) == ["kling-2.0-master", "kling-2.5-turbo-pro", "veo-3-fast"]
    assert table.loc["veo-3-fast", "usd_per_ok_clip"] == pytest.approx(0.40)
    assert (table["failure_rate"] == 0).all() and (table["median_s"] > 0).all()
    report = kl.report(df, tmp_path / "r.html", rows="model", cols="prompt", store=store)
    assert "$ per ok clip" in report.read_text()
    assert kl.query("select model, count(*) as n from runs group by model order by model", store=store)[
        "n"
    ].tolist() == [4, 4, 4]


def png(path: Path, size: tuple[int, int] = (96, 54)) -> Path:
    Image.new("RGB", size, (200, 80, 40)).save(path)
    return path


def test_one_local_png_over_four_requests_is_uploaded_once_and_never_again(emulator, tmp_path):
    png(tmp_path / "start.png")
    sweep = tmp_path / "i2v.yaml"
    sweep.write_text(
        "name: i2v\nmodel: kling-2.1-standard\nimage: start.png\n"
        "grid: {prompt: [a fox runs, a fox sleeps]}\nrepeats: 2\n"
    )
    store = tmp_path / "store"
    assert main(["run", str(sweep), "--store", str(store), "--no-progress"]) == 0
    stats = emulator.stats()
    assert stats["uploads"] == 1 and stats["submissions"] == 4
    df = load_runs(store)
    assert set(df["endpoint"]) == {"fal-ai/kling-video/v2.1/standard/image-to-video"}
    assert df["image_sha256"].nunique() == 1 and df["image_sha256"].notna().all()
    assert all(emulator.base_url + "/files/" in a for a in df["arguments_json"])
    assert main(["run", str(sweep), "--store", str(store), "--no-progress"]) == 0  # a re-run: cache hits
    assert emulator.stats()["uploads"] == 1 and emulator.stats()["submissions"] == 4
    sweep.write_text("name: other\nmodel: kling-2.1-standard\nimage: start.png\nprompt: a fox jumps\n")
    assert main(["run", str(sweep), "--store", str(store), "--no-progress"]) == 0  # a new request, same picture
    assert emulator.stats()["uploads"] == 1 and emulator.stats()["submissions"] == 5


def test_an_image_changed_after_the_sweep_was_read_fails_its_rows_and_nothing_is_sent(emulator, tmp_path):
    start = png(tmp_path / "start.png")
    sweep = kl.Sweep.grid(
        "changed", prompt=["a fox runs", "a fox sleeps"], model="kling-2.1-standard", image=str(start)
    )
    png(start, (96, 96))  # another picture under the same name
    result = kl.run(sweep, store=tmp_path / "store", progress=False)
    assert [r["status"] for r in result.rows] == ["failed", "failed"] and result.submitted == 0
    assert {r["error_type"] for r in result.rows} == {"image_changed"}
    assert result.rows[0]["error"].startswith("upload to fal storage failed: ") and "changed" in result.rows[0]["error"]
    assert emulator.stats()["uploads"] == 0 and emulator.stats()["submissions"] == 0


def test_an_end_frame_and_a_url_image(emulator, tmp_path):
    start, end = png(tmp_path / "a.png"), png(tmp_path / "b.png", (96, 96))
    sweep = kl.Sweep.grid("tail", prompt="a fox", model="kling-2.5-turbo-pro", image=str(start), end_image=str(end))
    result = kl.run(sweep, store=tmp_path / "store", progress=False)
    assert result.count("ok") == 1 and emulator.stats()["uploads"] == 2
    row = result.frame().iloc[0]
    assert row["end_image_sha256"] and row["image_sha256"] != row["end_image_sha256"]
    assert '"tail_image_url":"https://' in row["arguments_json"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("prompt: a\nmodel: kling-9\n", "unknown model 'kling-9'; known models: kling-2.0-master"),
        ("prompt: a\nmodel: veo-3\ncfg_scale: 0.5\n", "veo-3: cfg_scale: not an input of fal-ai/veo3"),
        ("prompt: a\nmodel: veo-3\nduration: '5'\n", 'veo-3: duration: must be one of "4s", "6s", "8s"'),
        ("prompt: a\nmodel: kling-2.1-standard\nimage: missing.png\n", "image: no such image file"),
        ("prompt: a\nmodel: kling-2.1-standard\nimage: notes.txt\n", "notes.txt is not an image"),
        ("prompt: a\nmodel: hailuo-02-standard\n", "no price for hailuo-02-standard (1 requests)"),
    ],
)
def test_bad_input_exits_2_and_submits_nothing(emulator, tmp_path, capsys, text, needle):
    (tmp_path / "notes.txt").write_text("hello")
    sweep = tmp_path / "bad.yaml"
    sweep.write_text(text)
    assert main(["run", str(sweep), "--store", str(tmp_path / "store"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err
    stats = emulator.stats()
    assert stats["submissions"] == 0 and stats["uploads"] == 0


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for needle in (
        "kling-2.0-master  Kling 2.0 Master (kling)  [default]",
        "fal-ai/kling-video/v2.5-turbo/pro/image-to-video",
        "price: $0.35 per 5 s clip, +$0.07 per extra second",
        "price: $0.10 per second ($0.15 with generate_audio=true)",
        "source: https://fal.ai/models/fal-ai/veo3/llms.txt (read 2026-12-01)",
        "inputs: prompt, image, duration, negative_prompt, cfg_scale, end_image",
    ):
        assert needle in out


def test_check_prices_against_the_emulated_pricing_api(emulator, monkeypatch, capsys):
    assert main(["models", "--check-prices"]) == 2
    assert "needs FAL_KEY" in capsys.readouterr().err
    monkeypatch.setenv("FAL_KEY", "a-real-looking-key")
    assert main(["models", "--check-prices", "veo-3-fast", "kling-2.0-master"]) == 0
    out = capsys.readouterr().out
    assert "0 differ" in out and "same        veo-3-fast" in out
    emulator.configure(price_overrides={"fal-ai/kling-video/v2/master/text-to-video": 0.30})
    assert main(["models", "--check-prices", "kling-2.0-master"]) == 1
    assert "differs     kling-2.0-master" in capsys.readouterr().out
    assert "a-real-looking-key" not in str(emulator.stats())  # the user's key never reaches the emulator


def test_a_model_registered_in_a_notebook_runs_on_the_emulator(emulator, tmp_path, monkeypatch):
    import kling_lab.models as registry
    from kling_lab.models.kling import KlingTextToVideo

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_BY_ENDPOINT", dict(registry._BY_ENDPOINT))
    kl.register_model(
        Model(
            alias="team-kling",
            name="Our Kling deployment",
            family="team",
            t2v=kl.Endpoint(
                id="team/kling-proxy/text-to-video",
                schema=KlingTextToVideo,
                price=kl.PerClip(kl.models.pricing.usd("0.50"))
                if False
                else kl.PerClip(__import__("decimal").Decimal("0.50")),
                sizes={("", "16:9"): (640, 360), ("", "9:16"): (360, 640), ("", "1:1"): (480, 480)},
                source_url="https://example.com/our-proxy",
                read_on="2026-12-01",
            ),
        )
    )
    result = kl.run(
        kl.Sweep.grid("mine", prompt="a fox", model=["team-kling", "kling-2.0-master"]),
        store=tmp_path / "s",
        progress=False,
    )
    assert result.count("ok") == 2
    df = result.frame()
    assert df.set_index("model")["cost_usd"].to_dict() == {"team-kling": 0.5, "kling-2.0-master": 1.4}
    assert df.set_index("model").loc["team-kling", "width"] == 160  # 640 x 360 at render scale 0.25


def test_rows_written_before_the_registry_load_with_their_model(emulator, tmp_path):
    store = tmp_path / "store"
    kl.run(kl.Sweep.grid("old", prompt="a fox"), store=store, progress=False)
    files = RunStore(store).part_files()
    old_columns = [
        f.name
        for f in RUN_SCHEMA
        if f.name
        not in ("model", "arguments_json", "seed", "resolution", "generate_audio", "image_sha256", "end_image_sha256")
    ]
    for key in files:
        path = store / key
        pq.write_table(pq.read_table(path).select(old_columns), path)
    assert "model" not in pq.read_table(store / files[0]).column_names
    df = load_runs(store)
    assert df["model"].tolist() == ["kling-2.0-master"] and pd.isna(df["seed"].iloc[0])
    assert isinstance(df["model"].dtype, pd.StringDtype)
    assert pa.types.is_string(RUN_SCHEMA.field("model").type)
