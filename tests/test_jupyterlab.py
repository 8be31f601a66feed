"""The views in a real JupyterLab (a ``jupyter lab`` server, notebooks run in headless Chromium).

What the issue 15 reporter checked by hand: the compare grid loads and plays every video in sync,
an A/B vote lands in the store the runs came from, ``source="files"`` works for a notebook in a
subfolder, and a live grid fills in while a sweep runs. Screenshots of the grid and the A/B view
at 1440×900 are saved under ``artifacts/screenshots/``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from lab_harness import VIEWPORT, Lab, open_notebook, run_all, screenshot, write_notebook
from views_helpers import NEG, launch_chromium, sweep_into

from kling_lab.views import load_votes

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FULL_ROWS = """sel => {
  const view = document.querySelector(sel);
  let box = view.parentElement;
  while (box && !(box.scrollHeight > box.clientHeight && getComputedStyle(box).overflowY !== 'visible')) box = box.parentElement;
  const area = (box || document.documentElement).getBoundingClientRect();
  const top = Math.max(area.top, 0), bottom = Math.min(area.bottom, window.innerHeight);
  const rows = {};
  for (const v of view.querySelectorAll('video')) {
    const r = v.getBoundingClientRect();
    if (r.top >= top && r.bottom <= bottom) rows[Math.round(r.top)] = (rows[Math.round(r.top)] || 0) + 1;
  }
  return Object.values(rows);
}"""

ALL_LOADED = """sel => { const v = [...document.querySelectorAll(sel)];
  return v.length > 0 && v.every(x => x.readyState >= 2 && x.currentSrc); }"""


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory, emulator_session) -> Path:
    root = tmp_path_factory.mktemp("lab")
    store = root / "data" / "kling_runs"
    sweep_into(emulator_session, store, "fox", cfg_scale=[0.25, 0.5, 0.75], negative_prompt=["", NEG], repeats=2)
    return root


@pytest.fixture(scope="module")
def lab(lab_root, tmp_path_factory):
    server = Lab(lab_root, tmp_path_factory.mktemp("lab_home"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch_chromium(p)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        yield page
    finally:
        screenshot(page, f"last-{request.node.name}")  # what the page showed at the end (pass or fail)
        context.close()


def store_path(lab: Lab) -> Path:
    return lab.root / "data" / "kling_runs"


def test_compare_grid_loads_every_video_and_plays_in_sync(lab, page):
    cells = [
        f"import kling_lab as kl\ndf = kl.load_runs({str(store_path(lab))!r})\nlen(df)",
        'w = kl.compare(df, rows="negative_prompt", cols="cfg_scale")\nw',
    ]
    write_notebook(lab.root / "grid" / "compare.ipynb", cells)
    open_notebook(page, lab, "grid/compare.ipynb")
    run_all(page, len(cells))
    page.wait_for_function(ALL_LOADED, arg=".kl-compare video", timeout=120_000)
    assert page.locator(".kl-compare video").count() == 12
    page.locator(".kl-compare").first.scroll_into_view_if_needed()
    page.evaluate("document.querySelector('.kl-compare').scrollIntoView({block: 'start'})")
    screenshot(page, "grid")
    rows = page.evaluate(FULL_ROWS, ".kl-compare")
    assert len([r for r in rows if r >= 3]) >= 2, rows  # at least two full rows of 16:9 clips at 1440×900
    page.locator(".kl-compare button.kl-play").click()
    page.wait_for_function(
        "[...document.querySelectorAll('.kl-compare video')].every(v => !v.paused && v.currentTime > 0.5)",
        timeout=60_000,
    )
    spread = page.evaluate(
        "(() => { const t = [...document.querySelectorAll('.kl-compare video')].map(v => v.currentTime);"
        " return Math.max(...t) - Math.min(...t); })()"
    )
    print(f"12 clips: {rows} fully visible per row at 1440x900; playing spread {spread * 1000:.0f} ms")
    assert spread < 0.35, spread


def test_ab_vote_lands_in_the_runs_store(lab, page):
    cells = [
        f"import kling_lab as kl\ndf = kl.load_runs({str(store_path(lab))!r})\nlen(df)",
        'v = kl.ab(df, by="negative_prompt", seed=1, voter="lab")\nv',
    ]
    write_notebook(lab.root / "votes" / "ab.ipynb", cells)
    before = len(load_votes(store_path(lab)))
    open_notebook(page, lab, "votes/ab.ipynb")
    run_all(page, len(cells))
    page.wait_for_function(ALL_LOADED, arg=".kl-ab video", timeout=120_000)
    page.evaluate("document.querySelector('.kl-ab').scrollIntoView({block: 'start'})")
    screenshot(page, "ab")
    page.locator(".kl-ab button.kl-vote-left").click()
    page.wait_for_function(
        "document.querySelector('.kl-ab .kl-last') && document.querySelector('.kl-ab .kl-last').textContent.includes('left was')",
        timeout=60_000,
    )
    votes = load_votes(store_path(lab))
    assert len(votes) == before + 1 and votes["voter"].iloc[-1] == "lab"
    assert not (lab.root / "votes" / "kling_runs").exists()


def test_files_source_works_for_a_notebook_in_a_subfolder(lab, page):
    """Issue 15 item 1: /files/ URLs 404'd for a notebook not at the Jupyter root (JPY_SESSION_NAME is absolute)."""
    cells = [
        f"import kling_lab as kl\ndf = kl.load_runs({str(store_path(lab))!r})\nlen(df)",
        'w = kl.compare(df, rows="negative_prompt", cols="cfg_scale", source="files")\nw',
    ]
    write_notebook(lab.root / "deep" / "er" / "files.ipynb", cells)
    open_notebook(page, lab, "deep/er/files.ipynb")
    run_all(page, len(cells))
    page.wait_for_function(ALL_LOADED, arg=".kl-compare video", timeout=120_000)
    srcs = page.locator(".kl-compare video").evaluate_all("vs => vs.map(v => v.currentSrc)")
    assert len(srcs) == 12 and all(s.startswith(f"{lab.url}/files/data/kling_runs/videos/") for s in srcs), srcs[:2]


def test_a_live_grid_fills_in_during_a_run(lab, page, emulator_session):
    """A grid opened on a sweep that runs elsewhere shows its jobs' states, then the clips as they arrive."""
    from conftest import FAST

    import kling_lab as kl
    from kling_lab.backends.emulator import EmulatorConfig

    store = lab.root / "live" / "kling_runs"
    sweep_code = 'kl.Sweep.grid("live-lab", prompt="a fox", cfg_scale=[0.25, 0.5, 0.75], negative_prompt=["", "blur"])'
    cells = [
        f"import kling_lab as kl\nsweep = {sweep_code}\nlen(sweep)",
        f"w = kl.watch(sweep, store={str(store)!r}, interval=0.3)\nw",
        "2 + 2",
    ]
    write_notebook(lab.root / "live" / "watch.ipynb", cells)
    open_notebook(page, lab, "live/watch.ipynb")
    run_all(page, len(cells))
    page.wait_for_function("document.querySelectorAll('.kl-compare .kl-pending').length === 6", timeout=60_000)
    emulator_session.reset(EmulatorConfig(**{**FAST, "concurrency": 2, "service_time_s": 1.0}))
    sweep = eval(sweep_code, {"kl": kl})
    runner = threading.Thread(target=lambda: kl.run(sweep, store=store, progress=False, concurrency=2))
    runner.start()
    try:
        page.wait_for_function(  # part-way: some clips in, some still waiting, with their state
            """() => { const v = document.querySelectorAll('.kl-compare video').length;
                       const p = document.querySelectorAll('.kl-compare .kl-pending').length;
                       const s = document.querySelector('.kl-compare .kl-summary').textContent;
                       return v > 0 && p > 0 && v + p === 6 && s.startsWith('running:'); }""",
            timeout=120_000,
        )
        screenshot(page, "live")
    finally:
        runner.join(180)
    page.wait_for_function(
        "[...document.querySelectorAll('.kl-compare video')].filter(v => v.readyState >= 2).length === 6",
        timeout=120_000,
    )
    page.wait_for_function(
        "document.querySelector('.kl-compare .kl-summary').textContent.startsWith('6 of 6 done')", timeout=30_000
    )
    assert "$8.40 at fal prices (emulator: nothing was spent)" in page.inner_text(".kl-compare .kl-summary")


def test_run_show_keeps_the_notebook_usable_while_the_grid_fills_in(lab, page, emulator_session):
    """``kl.run(sweep, show=True)``: the cell returns at once, the next cell runs, the grid fills in."""
    from conftest import FAST

    from kling_lab.backends.emulator import EmulatorConfig

    emulator_session.reset(EmulatorConfig(**{**FAST, "concurrency": 1, "service_time_s": 1.5}))
    store = lab.root / "shown" / "kling_runs"
    cells = [
        'import kling_lab as kl\nsweep = kl.Sweep.grid("shown", prompt="a fox", cfg_scale=[0.25, 0.75], '
        'negative_prompt=["", "blur"])\nlen(sweep)',
        f"handle = kl.run(sweep, store={str(store)!r}, show=True, concurrency=1)\nhandle",
        "print('still usable', 2 + 2)",
    ]
    write_notebook(lab.root / "shown" / "run.ipynb", cells)
    open_notebook(page, lab, "shown/run.ipynb")
    run_all(page, len(cells))
    assert "still usable 4" in page.inner_text(".jp-NotebookPanel:not(.lm-mod-hidden)")
    assert page.locator(".kl-compare .kl-pending").count() > 0  # the run goes on after the cells returned
    page.wait_for_function(
        "[...document.querySelectorAll('.kl-compare video')].filter(v => v.readyState >= 2).length === 4",
        timeout=120_000,
    )
    page.wait_for_function(
        "document.querySelector('.kl-compare .kl-summary').textContent.startsWith('4 of 4 done')", timeout=30_000
    )
