"""Plots of a real emulator sweep: rendered to PNG, labelled, no empty panels, numbers that match the log."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from kling_lab.backends.emulator import EmulatorConfig, EmulatorServer
from kling_lab.plots import (
    contact_sheet,
    cost_by_param,
    cumulative_spend,
    latency_split,
    metric_vs_param,
    status_summary,
)
from kling_lab.runner.api import run
from kling_lab.store.run_store import RunStore, load_runs, rows_frame
from kling_lab.sweep import Sweep

GRID = Sweep.grid(
    "plots",
    prompt="a lighthouse",
    cfg_scale=[0.2, 0.5, 0.8],
    aspect_ratio=["16:9", "1:1"],
    negative_prompt=["", "blur"],
    repeats=2,
)

PLOTS: dict[str, Callable[[pd.DataFrame], Figure]] = {
    "cost_by_param": cost_by_param,
    "cost_by_aspect": lambda df: cost_by_param(df, "aspect_ratio"),
    "cumulative_spend": cumulative_spend,
    "spend_by_backend": lambda df: cumulative_spend(df, by="backend"),
    "latency_per_run": latency_split,
    "latency_by_cfg": lambda df: latency_split(df, by="cfg_scale"),
    "metric_vs_param": metric_vs_param,
    "sharpness_by_aspect": lambda df: metric_vs_param(df, "qc_sharpness", "aspect_ratio", hue=None, error="se"),
    "contact_sheet": contact_sheet,
    "status_summary": status_summary,
}


@pytest.fixture(scope="module")
def runs(emulator_session: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """24 ok runs of GRID, 2 content-policy failures and 2 cache hits, as load_runs returns them."""
    emulator_session.reset(EmulatorConfig(queue_delay_s=0.05, service_time_s=0.1, render_scale=0.25, concurrency=8))
    store = RunStore(tmp_path_factory.mktemp("plots") / "store")
    run(GRID, store=store, progress=False, concurrency=8)
    run(Sweep.grid("blocked", prompt="a [blocked] lighthouse", cfg_scale=[0.2, 0.5]), store=store, progress=False)
    again = Sweep.grid("again", prompt="a lighthouse", cfg_scale=[0.2, 0.5], aspect_ratio="16:9", negative_prompt="")
    run(again, store=store, progress=False)  # both already in the log: cache hits
    df = load_runs(store)
    assert df["status"].value_counts().to_dict() == {"ok": 26, "failed": 2} and df["cache_hit"].sum() == 2
    return df


def assert_readable(fig: Figure, path: Path) -> None:
    """Rendered to a non-trivial PNG; every axes labelled on both axes and showing something."""
    fig.savefig(path, dpi=72)
    with Image.open(path) as image:
        assert image.width > 300 and image.height > 200
        assert len(np.unique(np.asarray(image.convert("L")))) > 20  # not a blank canvas
    assert fig.axes
    for ax in fig.axes:
        assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), f"unlabelled axes {ax.get_title()!r}"
        assert ax.has_data(), f"empty panel {ax.get_title()!r}"
    assert fig.axes[0].get_title() or fig.get_suptitle()


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_every_plot_renders_labelled_with_no_empty_panel(name: str, runs: pd.DataFrame, tmp_path: Path) -> None:
    assert_readable(PLOTS[name](runs), tmp_path / f"{name}.png")


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_empty_input_is_a_clear_value_error(name: str, runs: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="empty"):
        PLOTS[name](runs.iloc[:0])


def test_metric_means_grow_with_cfg_scale_one_line_per_negative_prompt(runs: pd.DataFrame) -> None:
    ax = metric_vs_param(runs).axes[0]
    assert len(ax.containers) == 2  # "" and "blur"
    for container in ax.containers:
        x, y = container.lines[0].get_data()
        assert np.all(np.diff(x) > 0) and np.all(np.diff(y) > 0)
    assert "95 % CI" in ax.get_legend().get_title().get_text() and "95 % CI" in ax.get_ylabel()
    assert "n = 4 runs per point" in ax.get_title()  # cache hits (repeats of a clip) are not counted again


def test_metric_error_bars_are_the_stated_interval() -> None:
    rows = [
        {"run_id": str(i), "status": "ok", "cfg_scale": 0.5, "qc_motion": v, "negative_prompt": ""}
        for i, v in enumerate([1.0, 3.0])
    ]
    for error, half_width in [("ci95", 12.706), ("se", 1.0)]:  # sd √2, n 2: SE 1, t(0.975, 1) 12.706
        ax = metric_vs_param(rows_frame(rows), error=error).axes[0]
        (container,) = ax.containers
        (segments,) = container.lines[2]
        (_, low), (_, high) = segments.get_segments()[0]
        assert (low, high) == pytest.approx((2.0 - half_width, 2.0 + half_width))


def test_metric_without_values_points_to_backfill(runs: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="backfill"):
        metric_vs_param(runs.assign(qc_motion=math.nan))


def test_missing_column_and_wrong_type_are_explained(runs: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="'colour'"):
        cost_by_param(runs, "colour")
    with pytest.raises(TypeError, match="DataFrame"):
        latency_split(runs.to_dict())


def test_cost_by_param_splits_spent_and_saved(runs: pd.DataFrame) -> None:
    ax = cost_by_param(runs).axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["ok (USD spent)", "failed (USD spent)", "cache hit (USD saved, \\$0 spent)"]
    ok_bars = ax.containers[0]
    assert sum(bar.get_height() for bar in ok_bars) == pytest.approx(runs["cost_usd"].sum()) == 33.6
    assert r"\$33.60 spent, \$2.80 saved" in ax.get_title()


def test_cumulative_spend_lines_end_at_each_total(runs: pd.DataFrame) -> None:
    ax = cumulative_spend(runs).axes[0]
    ends = {line.get_label(): line.get_ydata()[-1] for line in ax.get_lines()}
    assert ends == {
        "again (\\$0.00)": 0.0,
        "blocked (\\$0.00)": 0.0,
        "plots (\\$33.60)": pytest.approx(33.6),
        "all (\\$33.60)": pytest.approx(33.6),
    }


def test_latency_by_value_stacks_the_mean_phases(runs: pd.DataFrame) -> None:
    ax = latency_split(runs, by="aspect_ratio").axes[0]
    timed = runs[runs[["queue_s", "inference_s", "download_s"]].notna().any(axis=1)]
    expected = timed.groupby("aspect_ratio")[["queue_s", "inference_s", "download_s"]].apply(
        lambda g: g.fillna(0).mean().sum()
    )
    tops = [bar.get_y() + bar.get_height() for bar in ax.containers[-1]]
    assert tops == pytest.approx(expected.loc[["16:9", "1:1"]].tolist())


def test_contact_sheet_facets_and_labels(runs: pd.DataFrame) -> None:
    fig = contact_sheet(runs)  # n=4, as the render test: the cached strips are reused
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:2]] == ["aspect_ratio = 16:9", "aspect_ratio = 1:1"]
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == [f"cfg_scale = {v}" for v in (0.2, 0.5, 0.8)]
    first = fig.axes[0]
    assert len(first.images) == 1 and len(first.get_xticks()) == 4 and first.get_xlabel() == "time in clip (s)"
    assert [t.get_text() for t in first.get_yticklabels()] == [
        "neg (none) · rep 0",
        "neg (none) · rep 1",
        "neg blur · rep 0",
        "neg blur · rep 1",
    ]


def test_contact_sheet_says_when_a_cell_has_no_clip(runs: pd.DataFrame, caplog: pytest.LogCaptureFixture) -> None:
    missing = (runs["cfg_scale"] == 0.8) & (runs["aspect_ratio"] == "1:1")
    cell = (runs["cfg_scale"] == 0.2) & (runs["aspect_ratio"] == "1:1")
    unreadable = runs[cell].assign(video_path="/nonexistent.mp4")
    fig = contact_sheet(pd.concat([runs[~missing], unreadable]), max_runs=5)
    assert [t.get_text() for t in fig.axes[-1].texts] == ["no ok clip"]
    assert len(fig.axes[1].get_yticks()) == 4 and "nonexistent.mp4" in caplog.text  # left out, the 4 others shown


def test_status_summary_counts_outcomes_and_errors(runs: pd.DataFrame) -> None:
    outcomes_ax, errors_ax = status_summary(runs).axes
    assert [t.get_text() for t in outcomes_ax.get_legend().get_texts()] == ["ok", "cache hit", "failed"]
    assert [t.get_text() for t in errors_ax.get_yticklabels()] == ["content_policy_violation"]


def test_plots_leave_pyplot_alone(runs: pd.DataFrame) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    cost_by_param(runs)
    assert plt.get_fignums() == before
