"""The compare widget built from real emulator sweeps: model state, sync wiring, sources, notebook size."""

from __future__ import annotations

import base64
import os
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from views_helpers import standard_store, sweep_into

from kling_lab.store.run_store import load_runs
from kling_lab.views import CompareWidget, compare
from kling_lab.views.grid import visible
from kling_lab.views.sources import JUPYTER_FILES


@pytest.fixture(scope="module")
def store(tmp_path_factory, emulator_session) -> Path:
    root = tmp_path_factory.mktemp("compare") / "kling_runs"
    standard_store(emulator_session, root)
    return root


def test_widget_state_cells_labels_filters(store):
    w = compare(load_runs(store), store=store)
    assert isinstance(w, CompareWidget)
    state = w.get_state()
    for trait in ("grid", "selection", "show_diff", "playing", "loop", "tolerance", "_esm", "_css"):
        assert trait in state, trait
    cells = w.grid["cells"]
    assert len(cells) == 10 and w.grid["rows"] == "cfg_scale" and w.grid["cols"] == "aspect_ratio"
    assert [f["column"] for f in w.grid["filters"]] == ["prompt", "negative_prompt", "sweep_id"]
    ok = [c for c in cells if c["status"] == "ok"]
    assert all(c["src"].startswith("http://127.0.0.1:") and c["poster"].endswith(".poster.jpg") for c in ok)
    assert all(c["src"] is None and c["error"] for c in cells if c["status"] != "ok")
    w.selection = {**w.selection, "negative_prompt": '""'}
    assert len(w.visible_cells()) == 4


def test_sync_controls_are_traits_and_messages(store):
    w = compare(load_runs(store), store=store, tolerance=0.2)
    assert w.tolerance == 0.2 and w.loop is True and w.playing is False
    sent = []
    w.send = sent.append  # what the front end would receive
    w.play()
    assert w.playing is True
    w.pause()
    w.seek(2.5)
    assert w.playing is False and sent == [{"type": "seek", "t": 2.5}]
    w.show_diff = True
    assert w.get_state()["show_diff"] is True


def test_prompt_diff_marks_differing_prompts(store):
    w = compare(load_runs(store), store=store)
    assert w.grid["base_prompt"].startswith("a red fox trotting") and not w.grid["same_prompt"]
    blocked = next(c for c in w.grid["cells"] if c["status"] == "failed")
    assert blocked["prompt"] == "a [blocked] red fox"
    assert blocked["prompt_diff"] == [
        ["=", "a "],
        ["+", "[blocked] "],
        ["=", "red fox"],
        ["-", "trotting through fresh snow"],
    ]
    same = next(c for c in w.grid["cells"] if c["status"] == "ok")
    assert same["prompt_diff"] == [["=", w.grid["base_prompt"]]]


def test_served_videos_support_range_requests(store):
    w = compare(load_runs(store), store=store)
    url = next(c["src"] for c in w.grid["cells"] if c["src"])
    request = urllib.request.Request(url, headers={"Range": "bytes=0-1023"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 206 and len(response.read()) == 1024


def test_jupyter_files_source(store):
    w = compare(load_runs(store), store=store, source="files", files_root=store.parent)
    assert w.grid["base"] == JUPYTER_FILES
    src = next(c["src"] for c in w.grid["cells"] if c["src"])
    assert src.startswith("kling_runs/videos/") and src.endswith(".mp4")
    with pytest.raises(ValueError, match="outside the Jupyter root"):
        compare(load_runs(store), store=store, source="files", files_root=store / "runs")


def test_embed_inlines_small_previews(store):
    runs = load_runs(store)
    w = compare(runs[runs["negative_prompt"] == ""], store=store, embed=True)
    srcs = [c["src"] for c in w.grid["cells"] if c["src"]]
    assert len(srcs) == 4 and all(s.startswith("data:video/mp4;base64,") for s in srcs)
    assert all(len(base64.b64decode(s.split(",", 1)[1])) < 300_000 for s in srcs)


def test_empty_selection_shows_a_message(store):
    w = compare(load_runs(store).iloc[:0], store=store)
    assert w.grid["cells"] == [] and w.grid["message"]


SETUP = "import kling_lab.views as kv\nfrom kling_lab import load_runs\ndf = load_runs()\nlen(df)"


def _saved_size(tmp_path: Path, name: str, cells: list[str], store: Path) -> int:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in cells]
    env = {**os.environ, "KLING_LAB_STORE": str(store), "MPLBACKEND": "Agg"}
    client = NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)  # a real ipykernel; the env points it at the test's store (no emulator needed)
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path.stat().st_size


@pytest.mark.slow
def test_saved_notebook_grows_little_with_a_16_video_grid(emulator, tmp_path):
    store = tmp_path / "nb_store"
    sweep_into(
        emulator, store, cfg_scale=[0.1, 0.4, 0.7, 1.0], aspect_ratio=["16:9", "9:16"], negative_prompt=["blur", ""]
    )
    assert (load_runs(store)["status"] == "ok").sum() == 16
    base = _saved_size(tmp_path, "base", [SETUP], store)
    grid = _saved_size(tmp_path, "grid", [SETUP, "w = kv.compare(df)\nassert len(w.grid['cells']) == 16\nw"], store)
    embed = _saved_size(tmp_path, "embed", [SETUP, "w = kv.compare(df, embed=True)\nw"], store)
    print(
        f"saved notebook bytes: without grid {base}, 16-video grid {grid} (+{grid - base}), "
        f"embed=True {embed} (+{embed - base})"
    )
    nb = nbformat.read(tmp_path / "grid.ipynb", as_version=4)
    assert "application/vnd.jupyter.widget-state+json" in nb.metadata.get("widgets", {})  # the state was saved
    assert grid - base <= 100_000
    assert embed - base > grid - base + 16 * 10_000  # inlining is measurably bigger: the bound can fail


@pytest.mark.browser
def test_the_page_filters_toggles_diff_and_plays_in_sync(store):
    from playwright.sync_api import sync_playwright
    from views_helpers import launch_chromium, mount_widget

    w = compare(load_runs(store), store=store)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            mount_widget(page, w)
            assert page.locator("video").count() == 8 and page.locator(".kl-card.kl-status-failed").count() == 2
            page.select_option("select[data-column='negative_prompt']", '""')
            assert page.evaluate("window.klModel.get('selection').negative_prompt") == '""'
            assert page.locator("video").count() == 4
            page.check("input[data-trait=show_diff]")
            assert page.evaluate("window.klModel.get('show_diff')") is True
            page.wait_for_function(
                "[...document.querySelectorAll('video')].every(v => v.readyState >= 1)", timeout=20_000
            )
            page.click("button.kl-play")
            assert page.evaluate("window.klModel.get('playing')") is True
            page.wait_for_function(
                "[...document.querySelectorAll('video')].every(v => !v.paused && v.currentTime > 0.3)", timeout=20_000
            )
            page.evaluate("window.klModel.set('playing', false)")  # Python's w.pause() arrives as a trait change
            page.wait_for_function("[...document.querySelectorAll('video')].every(v => v.paused)", timeout=5_000)
        finally:
            browser.close()


def test_selection_takes_plain_values_like_filters(store):
    """Issue 15 item 5: ``w.selection = {"negative_prompt": "blur, …"}`` emptied the grid (it wanted JSON keys)."""
    runs = load_runs(store)
    w = compare(runs, store=store)
    w.selection = {"negative_prompt": "blur, distort, and low quality"}
    assert len(w.visible_cells()) == 6  # 4 ok + the 2 blocked runs (Kling's default negative prompt)
    assert w.selection["negative_prompt"] == '"blur, distort, and low quality"'
    assert w.selection["prompt"] == "*"  # columns not named go back to their default
    w.selection = {"negative_prompt": ""}
    assert len(w.visible_cells()) == 4
    w.selection = {**w.selection, "negative_prompt": '""'}  # keys (what the page sends) still work
    assert len(w.visible_cells()) == 4
    w.selection = {"negative_prompt": "*"}
    assert len(w.visible_cells()) == 10
    f = compare(runs, store=store, filters={"negative_prompt": ""})
    assert f.selection == {**w.selection, "negative_prompt": '""'}
    import traitlets

    with pytest.raises(traitlets.TraitError, match="not in the data"):
        w.selection = {"negative_prompt": "sharp"}


@pytest.mark.browser
def test_a_reopened_notebook_says_to_rerun_the_cell(store):
    """Issue 15 item 4: saved views whose kernel (and video server) is gone said only "could not load"."""
    from playwright.sync_api import sync_playwright
    from views_helpers import launch_chromium, mount_widget

    w = compare(load_runs(store), store=store)
    dead = {**w.grid, "cells": [{**c, "src": c["src"] and "http://127.0.0.1:9/gone.mp4"} for c in w.grid["cells"]]}
    w.grid = dead
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            mount_widget(page, w)
            page.wait_for_selector(".kl-banner:not([hidden])", timeout=20_000)
            assert "re-run this cell" in page.inner_text(".kl-banner")
            page.wait_for_function("document.querySelectorAll('.kl-card .kl-flag').length === 8", timeout=20_000)
            assert "re-run the cell" in page.locator(".kl-card .kl-flag").first.inner_text()
        finally:
            browser.close()


LAYOUT = """() => {
  const videos = [...document.querySelectorAll('.kl-grid video')];
  const boxes = videos.map(v => { const r = v.getBoundingClientRect();
    return {ratio: r.width / r.height, clip: v.videoWidth / v.videoHeight, top: r.top, h: r.height}; });
  const titles = [...document.querySelectorAll('.kl-title')].map(t => t.getBoundingClientRect().height);
  const rowhead = [...document.querySelectorAll('.kl-rowhead')].map(r => r.getBoundingClientRect().width);
  const grid = document.querySelector('.kl-grid').getBoundingClientRect().width;
  return {boxes, titles, rowhead, grid};
}"""


@pytest.mark.browser
def test_layout_fits_clips_by_aspect_and_keeps_titles_and_headers_in_bounds(emulator, tmp_path):
    """Columns sized by aspect ratio (no black bars on 9:16), one-line titles, wrapped row headers."""
    from playwright.sync_api import sync_playwright
    from views_helpers import launch_chromium, mount_widget

    long = "a red fox trotting through fresh snow at dawn, cinematic, golden light, slow dolly shot, 35 mm film"
    store = tmp_path / "layout"
    runs = sweep_into(
        emulator, store, prompt=[long, "a fox"], aspect_ratio=["16:9", "9:16"], negative_prompt=["", "blur"]
    )
    w = compare(runs, rows="prompt", cols="aspect_ratio", store=store)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            mount_widget(page, w)
            page.wait_for_function(
                "[...document.querySelectorAll('video')].every(v => v.readyState >= 1)", timeout=20_000
            )
            got = page.evaluate(LAYOUT)
        finally:
            browser.close()
    for box in got["boxes"]:
        assert box["ratio"] == pytest.approx(box["clip"], rel=0.04), box  # the clip fills its box
    tall = [b for b in got["boxes"] if b["clip"] < 1]
    wide = [b for b in got["boxes"] if b["clip"] > 1]
    assert tall and wide and abs(tall[0]["h"] - wide[0]["h"]) < 0.1 * wide[0]["h"]  # one height per row
    assert max(got["titles"]) == pytest.approx(min(got["titles"]), abs=1)  # no title wraps
    assert max(got["rowhead"]) < 0.25 * got["grid"]  # the long prompt header wraps instead of widening


@pytest.mark.browser
def test_sort_filter_and_enlarge_in_the_page(store):
    from playwright.sync_api import sync_playwright
    from views_helpers import launch_chromium, mount_widget

    w = compare(load_runs(store), store=store)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            mount_widget(page, w)
            page.select_option("select.kl-sort", "-qc_motion")
            assert page.evaluate("window.klModel.get('sort')") == "-qc_motion"
            ranked = page.locator(".kl-gallery .kl-card").evaluate_all(
                "cards => cards.map(c => c.querySelector('.kl-title').textContent)"
            )
            assert [t.split(" ")[0] for t in ranked] == [f"#{i}" for i in range(1, 11)]
            order = [c["run_id"] for c in visible(w.grid, w.selection, "-qc_motion")]
            assert page.locator(".kl-gallery .kl-card").evaluate_all("cs => cs.map(c => c.dataset.runId)") == order
            page.select_option("select.kl-range-column", "qc_motion")
            page.fill("input.kl-range-low", "9")
            page.locator("input.kl-range-low").dispatch_event("change")
            assert page.evaluate("window.klModel.get('ranges')") == {"qc_motion": [9, None]}
            expected = len(visible(w.grid, w.selection, "-qc_motion", {"qc_motion": [9, None]}))
            assert 0 < page.locator(".kl-gallery .kl-card").count() == expected < 8
            page.select_option("select.kl-sort", "")
            page.wait_for_function(
                "[...document.querySelectorAll('.kl-grid video')].every(v => v.readyState >= 1)", timeout=20_000
            )
            page.locator(".kl-grid video").first.click()
            page.wait_for_selector(".kl-lightbox video.kl-big", timeout=5_000)
            assert "motion" in page.inner_text(".kl-lightbox")
            page.keyboard.press("Escape")
            assert page.locator(".kl-lightbox").count() == 0
            page.click("button.kl-play")  # cards reused across redraws are still on the clock
            page.wait_for_function(
                "[...document.querySelectorAll('.kl-grid video')].every(v => !v.paused && v.currentTime > 0.2)",
                timeout=20_000,
            )
        finally:
            browser.close()


@pytest.mark.browser
def test_the_kernel_side_controls_drive_the_page(store):
    """What w.play(), w.pause(), w.seek(t) and w.selection = ... send arrives and moves every video."""
    from playwright.sync_api import sync_playwright
    from views_helpers import launch_chromium, mount_widget

    w = compare(load_runs(store), store=store)
    sent: list[dict] = []
    w.send = sent.append
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            mount_widget(page, w)
            videos = "[...document.querySelectorAll('.kl-grid video')]"
            page.wait_for_function(f"{videos}.length === 8 && {videos}.every(v => v.readyState >= 1)", timeout=20_000)
            w.play()
            page.evaluate("v => window.klModel.set('playing', v)", w.playing)
            page.wait_for_function(f"{videos}.every(v => !v.paused && v.currentTime > 0.2)", timeout=20_000)
            w.pause()
            page.evaluate("v => window.klModel.set('playing', v)", w.playing)
            page.wait_for_function(f"{videos}.every(v => v.paused)", timeout=20_000)
            w.seek(0.5)
            page.evaluate("msg => window.klDeliver(msg)", sent[-1])
            page.wait_for_function(f"{videos}.every(v => Math.abs(v.currentTime - 0.5) < 0.05)", timeout=20_000)
            w.selection = {**w.selection, "negative_prompt": '""'}
            page.evaluate("s => window.klModel.set('selection', s)", w.selection)
            page.wait_for_function(f"{videos}.length === 4", timeout=20_000)
            assert len(w.visible_cells()) == 4
        finally:
            browser.close()
