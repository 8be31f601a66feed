"""``ab``: blind pairwise votes between arms of one parameter (e.g. two negative prompts).

Each screen shows two runs with the same prompt from different arms of ``by`` (see ``pairing``),
left/right shuffled, arm labels hidden until the vote is cast, playback synced. Buttons and keys
(← left, → right, ↓ tie, b both bad) vote; every vote is appended to the store at once (see
``votes``). Pairs this voter already judged in earlier sessions are skipped (``resume=True``).
"""

from __future__ import annotations

import getpass
import os
import uuid
from typing import Any

import anywidget
import pandas as pd
import traitlets

from kling_lab.errors import InvalidInput
from kling_lab.store.run_store import RunStore, store_of
from kling_lab.store.schema import PARAM_COLUMNS
from kling_lab.store.votes import CHOICES, append_vote, load_votes, vote_row
from kling_lab.views import assets, values
from kling_lab.views.ab_adaptive import AdaptiveVoting, earlier_votes
from kling_lab.views.labels import aspect, param_text
from kling_lab.views.pairing import Pair, make_pairs
from kling_lab.views.sources import Source, SourceName, locate, make_source


class ABWidget(anywidget.AnyWidget):
    """The vote widget. ``vote(choice)`` is what the buttons and keys call."""

    _esm = assets.bundle("synced_playback.js", "ab.js")
    _css = assets.stylesheet()

    by = traitlets.Unicode("").tag(sync=True)
    pair = traitlets.Dict().tag(sync=True)  # {index, left: {src, poster}, right: {...}, prompt, facts}: no arms
    progress = traitlets.Dict().tag(sync=True)  # {done, total, earlier}
    last = traitlets.Dict().tag(sync=True)  # the previous vote, revealed: {choice, left_arm, right_arm}
    message = traitlets.Unicode("").tag(sync=True)
    base = traitlets.Unicode("").tag(sync=True)  # how the page resolves media URLs (see sources)
    source = traitlets.Unicode("").tag(sync=True)  # the Source's kind: explains a video that fails to load
    playing = traitlets.Bool(False).tag(sync=True)
    loop = traitlets.Bool(True).tag(sync=True)
    tolerance = traitlets.Float(0.15).tag(sync=True)

    def __init__(
        self,
        pairs: list[Pair],
        *,
        by: str,
        voter: str,
        store: RunStore,
        source: Source,
        earlier: int = 0,
        message: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(by=by, base=source.base, source=getattr(source, "kind", ""), **kwargs)
        self._pairs, self._voter, self._store, self._source = pairs, voter, store, source
        self._earlier, self._index, self._empty_message, self._skipped = earlier, 0, message, 0
        self.session_id = uuid.uuid4().hex
        self.on_msg(self._on_msg)
        self._show()

    @property
    def current(self) -> Pair | None:
        """The pair on screen (None when every pair has a vote)."""
        return self._pairs[self._index] if self._index < len(self._pairs) else None

    def vote(self, choice: str) -> dict[str, Any]:
        """Record ``choice`` for the pair on screen, write it to the store now, show the next pair."""
        pair = self.current
        if pair is None:
            raise InvalidInput("no pair left to vote on")
        row = vote_row(
            voter=self._voter,
            by=self.by,
            left=pair.left,
            right=pair.right,
            choice=choice,
            left_arm=values.label(pair.left.get(self.by)),
            right_arm=values.label(pair.right.get(self.by)),
            session_id=self.session_id,
        )
        append_vote(self._store, row)
        self._index += 1
        with self.hold_sync():
            self.last = {k: row[k] for k in ("choice", "left_arm", "right_arm", "left_run_id", "right_run_id")}
            self._show()
        return row

    def skip(self) -> None:
        """Show the next pair without a vote (e.g. a video did not load); it is offered again next session."""
        if self.current is None:
            raise InvalidInput("no pair left to skip")
        self._index += 1
        self._skipped += 1
        with self.hold_sync():
            self._show()

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        # the index guards against a double click voting twice on the same screen
        if content.get("index") != self._index:
            return
        if content.get("type") == "vote" and content.get("choice") in CHOICES:
            self.vote(content["choice"])
        elif content.get("type") == "skip":
            self.skip()

    def _side(self, run: Any) -> dict[str, Any]:
        video = locate(self._store, run.get("video_path"))
        if video is None:  # deleted since the pairs were made
            return {"src": None, "poster": None, "missing": f"video file missing: {run.get('video_path')}"}
        return {"src": self._source.video(video), "poster": self._source.poster(video), "aspect": aspect(run)}

    def _show(self) -> None:
        total = len(self._pairs) + self._earlier
        done = self._index + self._earlier - self._skipped
        self.progress = {"done": done, "total": total, "earlier": self._earlier, "skipped": self._skipped}
        pair = self.current
        if pair is None:
            self.pair = {}
            skipped = f" ({self._skipped} skipped: run ab() again to see them)" if self._skipped else ""
            self.message = self._empty_message or (
                f"All {total - self._skipped} pairs shown have a vote{skipped}: see win_rates(load_votes(store))."
            )
            return
        shared = [
            c
            for c in PARAM_COLUMNS
            if c not in (self.by, "prompt", "repeat") and values.key(pair.left.get(c)) == values.key(pair.right.get(c))
        ]
        self.pair = {
            "index": self._index,
            "left": self._side(pair.left),
            "right": self._side(pair.right),
            "prompt": pair.left.get("prompt") or "",
            "facts": param_text(pair.left, shared),
        }
        self.message = ""

    def __repr__(self) -> str:
        return f"<ABWidget by={self.by!r}: {self.progress.get('done', 0)}/{self.progress.get('total', 0)} voted>"


class AdaptiveABWidget(AdaptiveVoting, ABWidget):
    """The vote widget of ``ab(..., adaptive=True)``: each next pair by expected information."""


def ab(
    runs: pd.DataFrame,
    by: str = "negative_prompt",
    *,
    voter: str | None = None,
    store: RunStore | str | os.PathLike[str] | None = None,
    seed: int | None = None,
    resume: bool = True,
    source: SourceName | Source = "server",
    embed: bool = False,
    adaptive: bool = False,
    confidence: float = 0.95,
) -> ABWidget:
    """A blind A/B voting widget over the arms of ``by`` in ``runs``; votes go to ``store``'s ``votes``.

    ``store``: default, the store ``runs`` was loaded from (``runs.attrs["kling_lab_store"]``), else
    ``$KLING_LAB_STORE`` or ./kling_runs.

    ``voter``: who votes (default: the OS user). ``seed``: fixes the pair order and sides.
    ``resume``: skip pairs this voter already voted on for ``by``. ``source``/``embed``: as in ``compare``.
    ``adaptive``: choose each next pair by expected information and say when the top arm is separated at
    ``confidence`` (:mod:`kling_lab.views.ab_adaptive`).
    """
    if len(runs.columns) and by not in runs.columns:
        raise InvalidInput(f"by: unknown run-log column {by!r}; try one of {PARAM_COLUMNS}")
    store = store_of(runs, store)
    records = [{str(k): values.py(v) for k, v in r.items()} for r in runs.to_dict("records")]
    usable = [r for r in records if r.get("status") == "ok" and locate(store, r.get("video_path")) is not None]
    pairs = make_pairs(usable, by, seed=seed)
    voter = voter or _user()
    earlier = 0
    if resume and pairs:
        old = load_votes(store)
        old = old[(old["voter"] == voter) & (old["by"] == by)]
        seen = {frozenset(p) for p in zip(old["left_run_id"], old["right_run_id"])}
        earlier = sum(p.run_ids in seen for p in pairs)
        pairs = [p for p in pairs if p.run_ids not in seen]
    arms = {values.key(r.get(by)) for r in usable}
    message = (
        ""
        if pairs or earlier
        else (
            f"Nothing to compare: {len(usable)} playable ok run(s) of {len(records)}, {len(arms)} arm(s) of {by!r}; "
            "a pair needs two arms with the same prompt."
        )
    )
    if adaptive:
        arms = {values.label(r.get(by)) for r in usable}
        return AdaptiveABWidget(
            pairs,
            by=by,
            records=usable,
            earlier_votes=earlier_votes(store, by, arms),
            confidence=confidence,
            seed=seed,
            voter=voter,
            store=store,
            source=make_source(source, embed=embed),
            message=message,
        )
    return ABWidget(
        pairs,
        by=by,
        voter=voter,
        store=store,
        source=make_source(source, embed=embed),
        earlier=earlier,
        message=message,
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "anonymous"
