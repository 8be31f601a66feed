"""The static HTML report: escaping, relative or copied videos, and playback in headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from views_helpers import launch_chromium, standard_store, sweep_into

from kling_lab.store.run_store import load_runs
from kling_lab.views import report

NASTY = 'a fox </script><b>bold</b> & "quotes"'


@pytest.fixture(scope="module")
def store(tmp_path_factory, emulator_session) -> Path:
    root = tmp_path_factory.mktemp("report") / "kling_runs"
    standard_store(emulator_session, root)
    sweep_into(emulator_session, root, "nasty", prompt=NASTY, cfg_scale=0.5, aspect_ratio="1:1")
    return root


def grid_state(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="kl-grid-data">(.*?)</script>', page, re.S)
    assert match
    return json.loads(match.group(1))


def test_user_text_is_escaped(store, tmp_path):
    page = report(load_runs(store), tmp_path / "r.html", store=store, title="<i>mine</i>").read_text()
    assert "</script><b>" not in page and "<b>bold</b>" not in page and "<i>mine</i>" not in page
    assert "&lt;i&gt;mine&lt;/i&gt;" in page
    assert "a fox &lt;/script&gt;&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quotes&quot;" in page  # in the tables
    assert NASTY in [c["prompt"] for c in grid_state(page)["grid"]["cells"]]  # the JSON still carries it exactly


def test_no_network_references(store, tmp_path):
    page = report(load_runs(store), tmp_path / "r.html", store=store).read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "@font-face" not in page
    for cell in grid_state(page)["grid"]["cells"]:
        for url in (cell["src"], cell["poster"]):
            assert url is None or not re.match(r"[a-z]+:", url)  # relative paths only


def test_relative_and_copied_videos(store, tmp_path):
    runs = load_runs(store)
    beside = report(runs, tmp_path / "out" / "r.html", store=store)
    cells = grid_state(beside.read_text())["grid"]["cells"]
    for cell in (c for c in cells if c["src"]):
        assert (beside.parent / cell["src"]).resolve().is_file()
    copied = report(runs, tmp_path / "share" / "sweep.html", copy_videos=True, store=store)
    cells = grid_state(copied.read_text())["grid"]["cells"]
    srcs = [c["src"] for c in cells if c["src"]]
    assert srcs and all(s.startswith("sweep_files/") and (copied.parent / s).is_file() for s in srcs)
    assert all((copied.parent / c["poster"]).is_file() for c in cells if c["poster"])


def test_tables_and_failed_runs(store, tmp_path):
    page = report(load_runs(store), tmp_path / "r.html", store=store).read_text()
    for heading in ("Cost and latency", "Runs and parameters", "QC metrics"):
        assert heading in page
    assert page.count('<tr class="kl-bad">') == 2 and "content_policy_violation" in page
    assert "$12.60" in page  # 9 ok runs × $1.40


def test_empty_runs_still_write_a_page(store, tmp_path):
    page = report(load_runs(store).iloc[:0], tmp_path / "empty.html", store=store).read_text()
    assert "No runs" in page and grid_state(page)["grid"]["message"]


@pytest.mark.browser
def test_report_plays_in_headless_chromium(store, tmp_path):
    from playwright.sync_api import sync_playwright

    runs = load_runs(store)
    path = report(runs, tmp_path / "report.html", store=store)
    n_videos = int((runs["status"] == "ok").sum())
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri())
            assert page.locator("video").count() == n_videos
            # every <video> loads its metadata: Chromium reads and decodes the emulator's H.264
            page.wait_for_function(
                "[...document.querySelectorAll('video')].every(v => v.readyState >= 1)", timeout=20_000
            )
            assert page.evaluate("[...document.querySelectorAll('video')].every(v => !v.error && v.videoWidth > 0)")
            before = page.evaluate("[...document.querySelectorAll('video')].map(v => v.currentTime)")
            page.click("button.kl-play")
            page.wait_for_function(
                "[...document.querySelectorAll('video')].every(v => !v.paused && v.currentTime > 0.3)", timeout=20_000
            )
            after = page.evaluate("[...document.querySelectorAll('video')].map(v => v.currentTime)")
            decoded = page.evaluate(
                "[...document.querySelectorAll('video')].map(v => v.getVideoPlaybackQuality().totalVideoFrames)"
            )
            assert all(n > 0 for n in decoded), decoded  # frames were really decoded, not just metadata read
            assert all(b < a for b, a in zip(before, after))
            spread = max(after) - min(after)
            assert spread < 0.5, after  # one master clock: the clips stay together
            assert page.inner_text("button.kl-play").endswith("pause")
            page.click("button.kl-play")
            page.wait_for_function("[...document.querySelectorAll('video')].every(v => v.paused)", timeout=5_000)
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
        finally:
            browser.close()
    assert not errors
    assert all(url.startswith(("file:", "data:")) for url in requests), [u for u in requests if "file:" not in u]


def test_report_words_emulator_money_like_the_cli(store, tmp_path):
    """Issue 15 item 6: the report's summary must not claim emulator money was spent."""
    page = report(load_runs(store), tmp_path / "r.html", store=store).read_text()
    assert "nothing was spent" in page
    assert "$11.20 spent" not in page and "$0.00 spent" not in page
