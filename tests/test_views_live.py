"""Live results: a grid that fills in while a sweep runs (placeholders with each job's state)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import FAST

import kling_lab as kl
from kling_lab.backends.emulator import EmulatorConfig
from kling_lab.store.run_store import RunStore, load_runs
from kling_lab.views.live import LiveGrid, default_facets, watch


@dataclass(frozen=True)
class Event:
    """The runner's JobEvent, field for field (kling_lab.runner.events)."""

    fingerprint: str
    repeat: int
    sweep_index: int | None
    state: str
    request_id: str | None = None
    queue_position: int | None = None
    message: str | None = None
    row: Any = None
    spent_usd: float = 0.0


SWEEP = kl.Sweep.grid("live", prompt="a fox", cfg_scale=[0.25, 0.5, 0.75], negative_prompt=["", "blur"])


def cells_by_fp(widget) -> dict[str, dict]:
    return {c["key"]: c for c in widget.grid["cells"]}


def test_default_facets_follow_what_varies():
    assert default_facets(SWEEP) == ("negative_prompt", "cfg_scale")
    assert default_facets(kl.Sweep.grid("r", prompt="a", cfg_scale=[0.1, 0.9], repeats=3)) == ("repeat", "cfg_scale")


def test_placeholders_show_each_jobs_state_then_the_clip(emulator, tmp_path):
    store = RunStore(tmp_path / "s")
    grid = LiveGrid(SWEEP, store=store)
    w = grid.widget
    assert len(w.grid["cells"]) == 6 and {c["status"] for c in w.grid["cells"]} == {"pending"}
    assert {c["state"] for c in w.grid["cells"]} == {"planned"}
    assert w.grid["summary"].startswith("running: 0 of 6 done · 6 planned")
    items = SWEEP.items
    grid.on_event(Event(items[0].fingerprint, 0, 0, "queued", "r0", queue_position=2))
    grid.on_event(Event(items[1].fingerprint, 0, 1, "running", "r1"))
    grid.flush()
    cells = cells_by_fp(w)
    assert cells[items[0].fingerprint]["state"] == "queued" and cells[items[0].fingerprint]["queue_position"] == 2
    assert cells[items[1].fingerprint]["state"] == "running"
    result = kl.run(SWEEP, store=store, progress=False)
    rows = {r["fingerprint"]: r for r in result.rows}
    grid.on_event(Event(items[0].fingerprint, 0, 0, "ok", "r0", row=rows[items[0].fingerprint], spent_usd=1.4))
    failed = {**rows[items[2].fingerprint], "status": "failed", "error": "boom", "error_type": "x", "cost_usd": 0.0}
    grid.on_event(Event(items[2].fingerprint, 0, 2, "failed", "r2", row=failed, spent_usd=1.4))
    cells = cells_by_fp(w)
    ok = cells[items[0].fingerprint]
    assert ok["status"] == "ok" and ok["src"].startswith("http://127.0.0.1:") and ok["meta"].startswith("$1.40")
    assert cells[items[2].fingerprint]["error"] == "failed — x: boom"
    assert (
        "2 of 6 done" in w.grid["summary"]
        and "$1.40 at fal prices (emulator: nothing was spent) so far" in (w.grid["summary"])
    )
    grid.finish()
    assert not w.grid["summary"].startswith("running")


def test_watch_fills_in_a_sweep_running_elsewhere(emulator, tmp_path):
    emulator.reset(EmulatorConfig(**{**FAST, "concurrency": 2, "service_time_s": 0.6}))
    store = tmp_path / "s"
    w = watch(SWEEP, store=store, interval=0.1, timeout=120)
    seen: list[int] = []
    w.observe(lambda change: seen.append(sum(c["status"] != "pending" for c in change["new"]["cells"])), "grid")
    runner = threading.Thread(target=lambda: kl.run(SWEEP, store=store, progress=False, concurrency=2))
    runner.start()
    runner.join(120)
    deadline = time.monotonic() + 30
    while "running" in w.grid["summary"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert w.grid["summary"].startswith("6 of 6 done") and all(c["src"] for c in w.grid["cells"])
    assert any(0 < n < 6 for n in seen), seen  # it was seen part-way, not only at the end
    assert len(load_runs(store)) == 6


@pytest.mark.browser
def test_a_live_page_keeps_playing_cards_while_others_arrive(emulator, tmp_path):
    from playwright.sync_api import sync_playwright
    from views_helpers import launch_chromium, mount_widget

    store = RunStore(tmp_path / "s")
    result = kl.run(SWEEP, store=store, progress=False)
    rows = {r["fingerprint"]: r for r in result.rows}
    grid = LiveGrid(SWEEP, store=store)
    first, second, third = SWEEP.items[:3]
    grid.on_event(Event(first.fingerprint, 0, 0, "ok", row=rows[first.fingerprint], spent_usd=1.4))
    grid.on_event(Event(second.fingerprint, 0, 1, "queued", queue_position=3))
    grid.on_event(Event(third.fingerprint, 0, 2, "running"))
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            mount_widget(page, grid.widget)
            assert page.locator("video").count() == 1 and page.locator(".kl-pending").count() == 5
            texts = page.locator(".kl-pending").all_inner_texts()
            assert "queued · position 4" in texts and "running" in texts
            assert "running: 1 of 6 done" in page.inner_text(".kl-summary")
            page.evaluate("document.querySelector('video').klMark = 'first'")
            grid.on_event(Event(second.fingerprint, 0, 1, "ok", row=rows[second.fingerprint], spent_usd=2.8))
            page.evaluate("g => window.klModel.set('grid', g)", grid.widget.grid)  # what the kernel sends
            assert page.locator("video").count() == 2
            assert page.evaluate("[...document.querySelectorAll('video')].some(v => v.klMark === 'first')")
        finally:
            browser.close()


def test_run_show_returns_at_once_and_the_grid_fills_in(emulator, tmp_path):
    # each job stays queued 0.6 s at the emulator: long enough for the widget to show it on a loaded machine
    emulator.reset(EmulatorConfig(**{**FAST, "concurrency": 2, "queue_delay_s": 0.6, "service_time_s": 0.5}))
    states: list[str] = []
    handle = kl.run(SWEEP, store=tmp_path / "s", show=True, concurrency=2)
    assert isinstance(handle, kl.LiveRun) and not handle.done()  # the cell returns while the sweep runs
    handle.widget.observe(lambda c: states.extend(x.get("state", x["status"]) for x in c["new"]["cells"]), "grid")
    bundle = handle._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle  # shown as the widget itself
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == handle.widget.model_id
    result = handle.result(timeout=120)
    assert result.count("ok") == 6 and handle.done()
    deadline = time.monotonic() + 10
    while handle.widget.grid["summary"].startswith("running") and time.monotonic() < deadline:
        time.sleep(0.05)
    cells = handle.widget.grid["cells"]
    assert len(cells) == 6 and all(c["src"] for c in cells)
    assert handle.widget.grid["summary"].startswith("6 of 6 done · 6 ok · $8.40 at fal prices")
    assert {"queued", "running"} <= set(states)  # placeholders showed the jobs on their way


def test_run_show_can_be_cancelled_like_ctrl_c(emulator, tmp_path):
    emulator.reset(EmulatorConfig(**{**FAST, "concurrency": 1, "service_time_s": 2.0}))
    handle = kl.run(SWEEP, store=tmp_path / "s", show=True, concurrency=2)
    deadline = time.monotonic() + 60
    while not any(c.get("state") == "running" for c in handle.widget.grid["cells"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    handle.cancel()
    result = handle.result(timeout=60)
    assert result.interrupted and result.count("cancelled") >= 1
    deadline = time.monotonic() + 10
    while "stopped: cancelled" not in handle.widget.grid["summary"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "stopped: cancelled" in handle.widget.grid["summary"]
    assert emulator.stats()["submissions"] == result.submitted  # nothing submitted twice


def test_bad_input_fails_before_anything_starts(tmp_path):
    with pytest.raises(ValueError, match="concurrency"):
        kl.run(SWEEP, store=tmp_path / "s", show=True, concurrency=0)
    with pytest.raises(kl.InvalidInput, match="unknown column"):
        kl.run(SWEEP, store=tmp_path / "s", show=True, rows="colour")
    with pytest.raises(kl.InvalidInput, match="race"):
        kl.run(SWEEP, store=tmp_path / "s", show=True, strategy="race")
