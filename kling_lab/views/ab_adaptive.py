"""``ab(runs, by=..., adaptive=True)``: the blind A/B widget, choosing each next pair by expected information.

The statistics live in :mod:`kling_lab.stats.adaptive_pairs`; :class:`AdaptiveVoting` connects them to
the widget of :mod:`kling_lab.views.ab` (``AdaptiveABWidget`` there is this mixin over ``ABWidget``):

- the Bradley–Terry fit starts from every vote on ``by`` in the store between these arms (any voter)
  and takes in each vote as it is cast;
- the next pair is one of the arm pairs still in contention with the most expected information, shown
  with two clips this voter has not judged together (``resume=False`` allows pairs judged before);
- the message under the buttons says where the top arm stands, "top arm 'x' separated at 95 %: you can
  stop" once it is separated at a look;
- when the arms in contention have no unseen pair left, the widget stops and *offers* more clips:
  :attr:`AdaptiveABWidget.more_clips` is a Sweep of new repeats of those arms, priced in the message;
  nothing is generated unless you run it (``kl.run(widget.more_clips)``) and open ``ab`` again.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kling_lab.stats.adaptive_pairs import LOOKS, SCORES, BTFit, Separation, fit, information, separation
from kling_lab.stats.plan import request_of
from kling_lab.store.votes import CHOICES, load_votes
from kling_lab.sweep import Sweep, SweepItem
from kling_lab.views import values
from kling_lab.views.pairing import Pair

MORE_CLIPS = 2  # new repeats per arm in contention that the widget offers when it runs out of pairs


class AdaptiveVoting:
    """Mixin over ``ABWidget``: the next pair is chosen after each vote (see the module docstring)."""

    if TYPE_CHECKING:  # provided by ABWidget
        by: str
        message: str
        _pairs: list[Pair]

        @property
        def current(self) -> Pair | None: ...

    def __init__(
        self,
        candidates: list[Pair],
        *,
        by: str,
        records: Sequence[Mapping[str, Any]],
        earlier_votes: pd.DataFrame,
        confidence: float = 0.95,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        self._candidates = list(candidates)  # clip pairs this voter may still be shown
        self._records = list(records)  # every usable run: where new clips of an arm would come from
        shown = {values.label(run.get(by)) for p in candidates for run in (p.left, p.right)}
        self._arms = sorted(shown | {values.label(r.get(by)) for r in records} | _arms_of(earlier_votes))
        self._arm_index = {a: i for i, a in enumerate(self._arms)}
        k = len(self._arms)
        self._wins, self._counts = np.zeros((k, k)), np.zeros((k, k))
        for vote in earlier_votes.itertuples():
            self._tally(str(vote.left_arm), str(vote.right_arm), str(vote.choice))
        self._confidence, self._by_name = confidence, by
        self._rng = random.Random(seed)
        self._model: BTFit | None = None
        self._state: Separation | None = None
        self._separated_at: int | None = None  # the look at which the top arm was first separated
        self.more_clips: Sweep | None = None
        super().__init__([], by=by, **kwargs)  # type: ignore[call-arg]

    # -- the statistics --------------------------------------------------------------------
    def _tally(self, left: str, right: str, choice: str) -> None:
        i, j = self._arm_index.get(left), self._arm_index.get(right)
        if i is None or j is None or i == j:
            return
        score = SCORES[choice]
        self._wins[i, j] += score
        self._wins[j, i] += 1 - score
        self._counts[i, j] += 1
        self._counts[j, i] += 1

    def _refit(self) -> None:
        if len(self._arms) < 2:
            return
        start = self._model.theta if self._model is not None else None
        self._model = fit(self._wins, self._counts, self._arms, start=start)
        self._state = separation(self._model, self._confidence)
        if self._state.separated and self._separated_at is None:
            self._separated_at = self._state.look

    @property
    def standing(self) -> Separation | None:
        """Where the top arm stands after the votes so far (None with fewer than two arms)."""
        return self._state

    # -- the widget ------------------------------------------------------------------------
    def vote(self, choice: str) -> dict[str, Any]:
        pair = self.current
        if pair is not None and choice in CHOICES:
            self._tally(values.label(pair.left.get(self.by)), values.label(pair.right.get(self.by)), choice)
        row: dict[str, Any] = super().vote(choice)  # type: ignore[misc]
        return row

    def _show(self) -> None:
        if self.current is None:
            self._refit()
            chosen = self._next_pair()
            if chosen is not None:
                self._pairs.append(chosen)
        super()._show()  # type: ignore[misc]
        self.message = self._status()

    def _next_pair(self) -> Pair | None:
        """An unseen clip pair of the arm pair with the most expected information among the contenders."""
        if self._model is None or self._state is None or self.more_clips is not None:
            return None
        contenders = set(self._state.contenders)
        by_arms: dict[tuple[int, int], list[Pair]] = {}
        for pair in self._candidates:
            i = self._arm_index[values.label(pair.left.get(self.by))]
            j = self._arm_index[values.label(pair.right.get(self.by))]
            by_arms.setdefault((min(i, j), max(i, j)), []).append(pair)
        model = self._model
        inside = [arms for arms in by_arms if set(arms) <= contenders]
        if not inside and len(contenders) > 1:
            self.more_clips = self._offer(sorted(contenders))
            return None
        pool = inside or [arms for arms in by_arms if contenders & set(arms)]
        if not pool:
            return None
        best = max(pool, key=lambda arms: (information(model, *arms), self._rng.random()))
        chosen = self._rng.choice(by_arms[best])
        self._candidates.remove(chosen)
        return chosen

    def _offer(self, contenders: Sequence[int]) -> Sweep | None:
        """New repeats of the arms in contention (never run here: the message prices them)."""
        items: list[SweepItem] = []
        for arm in contenders:
            mine = [r for r in self._records if values.label(r.get(self.by)) == self._arms[arm]]
            if not mine:
                continue
            request = request_of(mine[0])
            if request is None:
                continue
            base = request.fingerprint(0)
            same = [r for r in mine if (other := request_of(r)) is not None and other.fingerprint(0) == base]
            start = max((int(r.get("repeat") or 0) for r in same), default=-1) + 1
            for repeat in range(start, start + MORE_CLIPS):
                items.append(SweepItem(request=request, repeat=repeat, index=len(items)))
        return Sweep(name=f"ab-more-{self.by}", items=tuple(items), tags={"ab_more_clips": self.by}) if items else None

    def _status(self) -> str:
        state, model = self._state, self._model
        votes = model.votes if model is not None else 0
        if state is None or model is None:
            return "Adaptive A/B needs two arms with votes or pairs."
        top = self._arms[state.top]
        if self._separated_at is not None:
            return (
                f"top arm {top!r} separated at {self._confidence:.0%}: you can stop "
                f"({votes} votes on {self.by}; decided at the look at {LOOKS[self._separated_at - 1]} votes)"
            )
        names = ", ".join(repr(self._arms[i]) for i in state.contenders)
        if self.more_clips is not None:
            return (
                f"The arms still in contention ({names}) have no pair left that you have not judged: generate "
                f"{len(self.more_clips)} more clips ({MORE_CLIPS} each, ${self.more_clips.total_usd():.2f} at fal "
                "prices; free on the emulator) with kl.run(widget.more_clips), then open ab(..., adaptive=True) again."
            )
        if self.current is None:
            return f"No pair left to show ({votes} votes on {self.by}); top so far: {top!r}."
        upcoming = next((n for n in LOOKS if n > votes), None)
        check = f"; next check at {upcoming} votes" if upcoming else ""
        return f"{len(state.contenders)} arms still in contention ({names}); top so far {top!r} after {votes} votes{check}."


def _arms_of(votes: pd.DataFrame) -> set[str]:
    if not len(votes):
        return set()
    return {str(a) for a in votes["left_arm"].dropna()} | {str(a) for a in votes["right_arm"].dropna()}


def earlier_votes(store: Any, by: str, arms: set[str]) -> pd.DataFrame:
    """Every vote on ``by`` in ``store`` between two of ``arms`` (any voter)."""
    votes = load_votes(store)
    if not len(votes):
        return votes
    keep = (votes["by"] == by) & votes["left_arm"].isin(arms) & votes["right_arm"].isin(arms)
    return votes[keep.fillna(False).astype(bool)]


__all__ = ["MORE_CLIPS", "AdaptiveVoting", "earlier_votes"]
