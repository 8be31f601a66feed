"""The blind A/B widget from a real emulator sweep: pairing, blindness, vote recording, restart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from views_helpers import standard_store

from kling_lab.errors import InvalidInput
from kling_lab.store.run_store import load_runs
from kling_lab.views import ABWidget, ab, load_votes

NEG = "blur, distort, and low quality"


@pytest.fixture(scope="module")
def swept(tmp_path_factory, emulator_session) -> Path:
    root = tmp_path_factory.mktemp("ab") / "kling_runs"
    standard_store(emulator_session, root)
    return root


@pytest.fixture
def store(swept, tmp_path) -> Path:
    """The module's runs with a fresh, empty votes dataset for each test."""
    copy = tmp_path / "kling_runs"
    copy.mkdir()
    (copy / "runs").symlink_to(swept / "runs")
    (copy / "videos").symlink_to(swept / "videos")
    return copy


def vote_via_front_end(w: ABWidget, choice: str) -> None:
    """What the page does on a click or key: a custom message to the kernel."""
    w._on_msg(w, {"type": "vote", "choice": choice, "index": w.pair["index"]}, [])


def test_pairs_match_everything_but_the_arm(store):
    w = ab(load_runs(store), by="negative_prompt", store=store, seed=3)
    assert w.progress == {"done": 0, "total": 4, "earlier": 0, "skipped": 0}  # 2 cfg × 2 aspect, each with both arms
    for pair in w._pairs:
        left, right = pair.left, pair.right
        assert left["negative_prompt"] != right["negative_prompt"]
        for col in ("prompt", "cfg_scale", "aspect_ratio", "duration_s"):
            assert left[col] == right[col]
        assert left["status"] == right["status"] == "ok"
    sides = {p.left["negative_prompt"] for p in w._pairs}
    assert sides == {"", NEG}  # sides are shuffled (seed 3 puts each arm on the left at least once)


def test_arms_stay_hidden_until_the_vote(store):
    w = ab(load_runs(store), store=store, seed=1, voter="ana")
    shown = json.dumps(w.pair)
    assert NEG not in shown and "negative_prompt" not in shown and w.last == {}
    assert w.pair["left"]["src"].startswith("http://127.0.0.1:") and w.pair["prompt"]
    first = w.current
    vote_via_front_end(w, "left")
    assert w.last["choice"] == "left"
    assert {w.last["left_arm"], w.last["right_arm"]} == {"(empty)", NEG}
    assert w.last["left_run_id"] == first.left["run_id"] and w.progress["done"] == 1


def test_each_vote_is_written_at_once_and_survives_a_restart(store):
    w = ab(load_runs(store), store=store, seed=1, voter="ana")
    pair = w.current
    vote_via_front_end(w, "right")
    assert len(list((store / "votes").glob("*.parquet"))) == 1  # written before the next pair shows
    w._on_msg(w, {"type": "vote", "choice": "left", "index": 0}, [])  # a stale double click: ignored
    vote_via_front_end(w, "both_bad")
    assert len(list((store / "votes").glob("*.parquet"))) == 2
    code = (
        "import json, sys; from kling_lab.views import load_votes; v = load_votes(sys.argv[1]); "
        "print(json.dumps({'n': len(v), 'choices': list(v['choice']), 'left': v['left_run_id'].iloc[0], "
        "'dtype': str(v['voted_at'].dtype), 'voter': v['voter'].iloc[0], 'by': v['by'].iloc[0]}))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(store)], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got == {
        "n": 2,
        "choices": ["right", "both_bad"],
        "left": pair.left["run_id"],
        "dtype": "datetime64[us, UTC]",
        "voter": "ana",
        "by": "negative_prompt",
    }
    votes = load_votes(store)
    assert set(votes.columns) >= {
        "vote_id",
        "voter",
        "voted_at",
        "by",
        "left_run_id",
        "right_run_id",
        "left_arm",
        "right_arm",
        "choice",
        "prompt",
        "sweep_id",
    }
    assert votes["prompt"].iloc[0].startswith("a red fox") and votes["sweep_id"].notna().all()


def test_a_new_session_skips_pairs_already_voted(store):
    runs = load_runs(store)
    w = ab(runs, store=store, seed=1, voter="ana")
    vote_via_front_end(w, "tie")
    again = ab(runs, store=store, seed=1, voter="ana")
    assert again.progress == {"done": 1, "total": 4, "earlier": 1, "skipped": 0} and len(again._pairs) == 3
    assert ab(runs, store=store, seed=1, voter="ben").progress["done"] == 0  # another voter starts fresh


def test_finishing_and_nothing_to_compare_are_messages(store):
    runs = load_runs(store)
    w = ab(runs, store=store, seed=1, voter="ana")
    for _ in range(4):
        w.vote("left")
    assert w.pair == {} and "All 4 pairs shown have a vote" in w.message
    with pytest.raises(InvalidInput):
        w.vote("left")
    single_arm = ab(runs[runs["negative_prompt"] == ""], store=store)
    assert single_arm.pair == {} and "Nothing to compare" in single_arm.message
    assert "Nothing to compare" in ab(runs.iloc[:0], store=store).message
    with pytest.raises(InvalidInput, match="unknown run-log column"):
        ab(runs, by="nope", store=store)


@pytest.mark.browser
def test_every_documented_key_sends_its_vote(store):
    """The hint on the page names the keys; pressing each sends that vote for the pair on screen."""
    from playwright.sync_api import sync_playwright
    from views_helpers import launch_chromium, mount_widget

    w = ab(load_runs(store), store=store, seed=1, voter="ana")
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            mount_widget(page, w)
            page.wait_for_selector("button.kl-vote-left:enabled", timeout=20_000)
            page.wait_for_function(
                "[...document.querySelectorAll('video')].every(v => v.readyState >= 1)", timeout=20_000
            )
            assert "keys (click the widget first): ← left · → right · ↓ tie · b both bad" in page.inner_text(".kl-ab")
            page.focus(".kl-ab")
            choices = {"ArrowLeft": "left", "ArrowRight": "right", "ArrowDown": "tie", "b": "both_bad"}
            for index, (key, choice) in enumerate(choices.items()):
                page.keyboard.press(key)
                assert page.evaluate("window.klSent")[-1] == {"type": "vote", "choice": choice, "index": index}
                w._on_msg(w, page.evaluate("window.klSent")[-1], [])  # the kernel records it, shows the next pair
                page.evaluate("pair => window.klModel.set('pair', pair)", w.pair)
                if w.pair:
                    page.wait_for_selector("button.kl-vote-left:enabled", timeout=20_000)
            page.keyboard.press("x")  # not a shortcut: nothing is sent
            assert len(page.evaluate("window.klSent")) == 4
        finally:
            browser.close()
    assert load_votes(store)["choice"].tolist() == ["left", "right", "tie", "both_bad"]


@pytest.mark.browser
def test_the_page_votes_with_keys_and_plays_the_pair_in_sync(store):
    from playwright.sync_api import sync_playwright
    from views_helpers import launch_chromium, mount_widget

    w = ab(load_runs(store), store=store, seed=1, voter="ana")
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            mount_widget(page, w)
            page.wait_for_function(
                "[...document.querySelectorAll('video')].every(v => v.readyState >= 1)"
                " && document.querySelectorAll('video').length === 2",
                timeout=20_000,
            )
            page.wait_for_selector("button.kl-vote-left:enabled", timeout=20_000)  # both videos loaded
            text = page.inner_text(".kl-ab")
            assert NEG not in text and "0 / 4 voted" in text and "← left" in text
            page.click("button.kl-play")
            page.wait_for_function(
                "[...document.querySelectorAll('video')].every(v => !v.paused && v.currentTime > 0.2)", timeout=20_000
            )
            page.focus(".kl-ab")
            page.keyboard.press("ArrowLeft")
            sent = page.evaluate("window.klSent")
            assert sent == [{"type": "vote", "choice": "left", "index": 0}]
            w._on_msg(w, sent[0], [])  # the kernel side of the same message
            page.evaluate(
                "([last, progress, pair]) => { const m = window.klModel; m.set('last', last);"
                " m.set('progress', progress); m.set('pair', pair); }",
                [w.last, w.progress, w.pair],
            )
            assert "1 / 4 voted" in page.inner_text(".kl-ab") and "left was" in page.inner_text(".kl-last")
            page.wait_for_selector("button.kl-vote-left:enabled", timeout=20_000)
            page.keyboard.press("b")
            assert page.evaluate("window.klSent")[-1] == {"type": "vote", "choice": "both_bad", "index": 1}
        finally:
            browser.close()
    assert load_votes(store)["choice"].tolist() == ["left"]


def test_votes_go_to_the_store_the_runs_came_from(store, tmp_path, monkeypatch):
    """Issue 15 item 2: votes on runs loaded from one store were written to ./kling_runs."""
    elsewhere = tmp_path / "notebook_dir"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("KLING_LAB_STORE")
    df = load_runs(store)
    assert df.attrs["kling_lab_store"] == str(store)
    subset = df[df["status"] == "ok"].reset_index(drop=True)  # slices keep the store
    w = ab(subset, seed=1, voter="ana")
    vote_via_front_end(w, "left")
    assert len(load_votes(store)) == 1
    assert not (elsewhere / "kling_runs").exists()
    other = tmp_path / "other_store"
    w = ab(subset, seed=1, voter="bob", store=other)  # an explicit store still wins
    vote_via_front_end(w, "tie")
    assert len(load_votes(other)) == 1 and len(load_votes(store)) == 1


DEAD = "http://127.0.0.1:9/gone.mp4"  # nothing listens on port 9: what a dead kernel's server looks like


@pytest.mark.browser
def test_no_vote_is_taken_when_the_videos_did_not_load(store):
    """Issue 15 items 3 and 4: a "tie" was recorded on a screen of two broken clips, with no hint why."""
    from playwright.sync_api import sync_playwright
    from views_helpers import launch_chromium, mount_widget

    w = ab(load_runs(store), store=store, seed=1, voter="ana")
    w.pair = {**w.pair, "left": {**w.pair["left"], "src": DEAD}, "right": {**w.pair["right"], "src": DEAD}}
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            mount_widget(page, w)
            page.wait_for_function(
                "document.querySelector('.kl-wait').textContent.includes('did not load')", timeout=20_000
            )
            for button in ("left", "right", "tie", "both_bad"):
                assert page.locator(f"button.kl-vote-{button}").is_disabled()
                page.locator(f"button.kl-vote-{button}").dispatch_event("click")  # even a forced click
            page.focus(".kl-ab")
            for key in ("ArrowLeft", "ArrowRight", "ArrowDown", "b"):
                page.keyboard.press(key)
            assert page.evaluate("window.klSent") == []
            page.wait_for_selector(".kl-banner:not([hidden])", timeout=20_000)
            assert "re-run this cell" in page.inner_text(".kl-banner")
            page.keyboard.press("s")
            assert page.evaluate("window.klSent") == [{"type": "skip", "index": 0}]
        finally:
            browser.close()
    w._on_msg(w, {"type": "skip", "index": 0}, [])
    assert w.progress["skipped"] == 1 and w.pair["index"] == 1 and load_votes(store).empty
