"""ab(..., adaptive=True) on real emulator clips: pairs between arms in contention, never twice to one
voter, "separated: you can stop", and more clips offered (priced, never generated) when pairs run out."""

from __future__ import annotations

import pytest

import kling_lab as kl
from kling_lab.store.run_store import load_runs
from kling_lab.views import ab, load_votes
from kling_lab.views.ab_adaptive import MORE_CLIPS

ARMS = ["", "blur", "grain"]


def make_store(tmp_path, repeats: int):
    store = tmp_path / "store"
    kl.run(kl.Sweep.grid("arms", prompt="A fox", negative_prompt=ARMS, repeats=repeats), store=store, progress=False)
    return store


def favour(widget, arm: str) -> None:
    """A voter who always prefers ``arm`` (and calls the rest a tie)."""
    pair = widget.current
    left, right = pair.left["negative_prompt"], pair.right["negative_prompt"]
    widget.vote("left" if left == arm else "right" if right == arm else "tie")


def shown_pairs(widget) -> list[frozenset[str]]:
    return [p.run_ids for p in widget._pairs]


def test_the_favourite_is_separated_and_the_widget_says_you_can_stop(emulator, tmp_path):
    store = make_store(tmp_path, repeats=4)  # 3 arms × 4 clips: 48 pairs
    w = ab(load_runs(store), by="negative_prompt", store=store, voter="ana", seed=1, adaptive=True)
    assert "3 arms still in contention" in w.message and "next check at 10 votes" in w.message
    for _ in range(30):
        if "you can stop" in w.message:
            break
        favour(w, "blur")
    assert "top arm 'blur' separated at 95%: you can stop" in w.message
    assert w.standing is not None and w.standing.contenders == (1,)
    votes = load_votes(store)
    assert len(votes) == len(shown_pairs(w)) - 1 and set(votes["voter"]) == {"ana"}
    assert len(set(shown_pairs(w))) == len(shown_pairs(w)), "a pair was shown twice"


def test_pairs_are_chosen_between_arms_still_in_contention(emulator, tmp_path):
    store = make_store(tmp_path, repeats=4)
    w = ab(load_runs(store), by="negative_prompt", store=store, voter="bo", seed=2, adaptive=True)
    for _ in range(30):  # 'grain' loses every vote it is in; the other two tie
        if w.standing is not None and w.standing.contenders == (0, 1):  # '' and 'blur'
            break
        pair = w.current
        sides = (pair.left["negative_prompt"], pair.right["negative_prompt"])
        w.vote("tie" if "grain" not in sides else ("right" if sides[0] == "grain" else "left"))
    assert w.standing is not None and w.standing.contenders == (0, 1), "grain was never ruled out"
    assert "2 arms still in contention ('(empty)', 'blur')" in w.message
    # the pair on screen was chosen with those two in contention: it is one of theirs
    assert {w.current.left["negative_prompt"], w.current.right["negative_prompt"]} == {"", "blur"}


def test_no_pair_twice_to_one_voter_and_more_clips_are_offered_priced_never_made(emulator, tmp_path):
    store = make_store(tmp_path, repeats=1)  # 3 clips: 3 pairs in all
    runs = load_runs(store)
    w = ab(runs, by="negative_prompt", store=store, voter="cy", seed=3, adaptive=True)
    while w.current is not None:
        w.vote("tie")
    assert len(shown_pairs(w)) <= 3 and len(set(shown_pairs(w))) == len(shown_pairs(w))
    submitted = emulator.stats()["submissions"]
    assert w.more_clips is not None and "have no pair left that you have not judged" in w.message
    arms = {i.request.negative_prompt for i in w.more_clips}
    assert len(w.more_clips) == MORE_CLIPS * len(arms) and len(arms) >= 2
    assert {i.repeat for i in w.more_clips} == set(range(1, 1 + MORE_CLIPS))  # new repeats, new fingerprints
    assert f"${w.more_clips.total_usd():.2f} at fal prices" in w.message
    assert emulator.stats()["submissions"] == submitted, "offering clips must not generate them"

    again = ab(load_runs(store), by="negative_prompt", store=store, voter="cy", seed=3, adaptive=True)
    assert again.current is None and again.more_clips is not None  # the same voter: nothing unseen
    other = ab(load_runs(store), by="negative_prompt", store=store, voter="di", seed=3, adaptive=True)
    assert other.current is not None  # another voter sees them
    asked = ab(load_runs(store), by="negative_prompt", store=store, voter="cy", resume=False, adaptive=True)
    assert asked.current is not None  # pairs judged before, because resume=False asks for them

    kl.run(w.more_clips, store=store, progress=False)
    more = ab(load_runs(store), by="negative_prompt", store=store, voter="cy", seed=3, adaptive=True)
    assert more.current is not None and more.more_clips is None


@pytest.mark.parametrize("adaptive", [False, True])
def test_the_plain_widget_is_unchanged_by_the_option(emulator, tmp_path, adaptive):
    store = make_store(tmp_path, repeats=1)
    w = ab(load_runs(store), by="negative_prompt", store=store, voter="ed", seed=0, adaptive=adaptive)
    assert w.current is not None and w.pair["left"]["src"]
    w.vote("left")
    assert len(load_votes(store)) == 1
