"""How far to trust a judge: its agreement with your own blind A/B votes.

For every human vote whose two clips both have the judge's verdict:

- a per-clip judge (``vlm``, ``qc``, ...) prefers the clip with the higher score: one dimension
  (``dimension=``) or, by default, the sum of its numeric scores; equal scores are a tie;
- a ``pairwise`` judge's own preference for that pair is used (the pair may have been shown to it in
  the other order: its A/B are mapped onto the vote's left/right).

Reported: the **agreement rate** over the votes where you picked a side (left or right), with a
**Wilson score interval** (default 95%; a judge tie counts as not agreeing); **Cohen's kappa** over
every compared vote with three categories (left, right, tie; "both bad" counts as a tie), which
discounts the agreement two raters reach by chance; agreement **per voter**; and the votes where the
judge disagrees most (per-clip judges: the largest score margin the other way), to look at side by
side. The judge is a model: read this before trusting its scores.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import pandas as pd

from kling_lab.errors import InvalidInput
from kling_lab.store import judgements as dataset
from kling_lab.store.run_store import RunStore

CHOICES = ("left", "right", "tie")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (NaN, NaN when ``n`` is 0)."""
    if n <= 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def cohens_kappa(first: list[str], second: list[str], categories: tuple[str, ...] = CHOICES) -> float:
    """Cohen's kappa of two raters' labels (NaN when there are none, or chance agreement is certain)."""
    n = len(first)
    if n == 0:
        return math.nan
    observed = sum(a == b for a, b in zip(first, second)) / n
    expected = sum((first.count(c) / n) * (second.count(c) / n) for c in categories)
    return math.nan if expected >= 1 else (observed - expected) / (1 - expected)


@dataclass
class Agreement:
    """A judge against human votes (see the module docstring)."""

    judge: str
    basis: str  # what the judge's preference is read from
    votes: int  # human votes considered
    compared: int  # of those, votes with the judge's verdict on both clips
    decisive: int  # compared votes where the human picked a side
    agree: int  # decisive votes where the judge picked the same side
    ci_low: float
    ci_high: float
    confidence: float
    kappa: float
    per_voter: pd.DataFrame
    disagreements: pd.DataFrame  # most disagreeing first
    table: pd.DataFrame  # every compared vote
    method: str = "Wilson score interval"

    @property
    def rate(self) -> float:
        return self.agree / self.decisive if self.decisive else math.nan

    def summary(self) -> str:
        if not self.compared:
            return (
                f"judge {self.judge!r}: none of the {self.votes} votes has its verdict on both clips; judge them first "
                f"(kl.judge(runs, judge={self.judge!r}, ...)). The judge is a model: until it is compared with your "
                "votes, nothing says how far to trust it."
            )
        pct = f"{100 * self.rate:.0f}%" if self.decisive else "n/a"
        ci = (
            f" ({100 * self.confidence:.0f}% {self.method}: {100 * self.ci_low:.0f}%–{100 * self.ci_high:.0f}%)"
            if self.decisive
            else ""
        )
        kappa = "n/a" if math.isnan(self.kappa) else f"{self.kappa:.2f}"
        missing = self.votes - self.compared
        tail = f"; {missing} votes lack its verdict on both clips" if missing else ""
        return (
            f"judge {self.judge!r} ({self.basis}) agrees with {self.agree} of {self.decisive} votes that picked a side: "
            f"{pct}{ci}; Cohen's kappa {kappa} over {self.compared} votes (ties included){tail}. "
            "The judge is a model: this agreement with your votes is the number to read before trusting it."
        )

    __str__ = summary

    def _repr_html_(self) -> str:
        from html import escape

        parts = [f"<p>{escape(self.summary())}</p>"]
        if len(self.per_voter):
            parts.append("<h4>Per voter</h4>" + self.per_voter.to_html(index=False, float_format=lambda x: f"{x:.2f}"))
        if len(self.disagreements):
            shown = self.disagreements.drop(columns=["left_video", "right_video"], errors="ignore").head(10)
            parts.append(
                "<h4>Where it disagrees most</h4>" + shown.to_html(index=False, float_format=lambda x: f"{x:.2f}")
            )
        return "\n".join(parts)


def _scores(frame: pd.DataFrame, dimension: str | None) -> tuple[dict[str, float], dict[str, str], str]:
    """video sha256 → the judge's score (and explanation), from its latest ok per-clip judgements."""
    import json

    latest = frame.sort_values("logged_at", kind="stable").groupby("video_sha256").tail(1)
    scores: dict[str, float] = {}
    notes: dict[str, str] = {}
    used: list[str] = []
    for row in latest.itertuples(index=False):
        try:
            values = json.loads(str(row.scores_json or "{}"))
        except ValueError:
            continue
        numbers = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if dimension is not None:
            if dimension not in numbers:
                continue
            scores[str(row.video_sha256)] = numbers[dimension]
        elif numbers:
            scores[str(row.video_sha256)] = sum(numbers.values())
            used = used or sorted(numbers)
        if isinstance(row.explanation, str):
            notes[str(row.video_sha256)] = row.explanation
    basis = f"its {dimension}" if dimension else "the sum of its scores" + (f" ({' + '.join(used)})" if used else "")
    return scores, notes, basis


def _preferences(frame: pd.DataFrame) -> dict[tuple[str, str], tuple[str, str]]:
    """(sha A, sha B) → (preferred, explanation), from the latest ok pairwise judgements."""
    latest = frame.sort_values("logged_at", kind="stable").groupby(["video_sha256", "other_video_sha256"]).tail(1)
    return {
        (str(r.video_sha256), str(r.other_video_sha256)): (
            str(r.preferred),
            r.explanation if isinstance(r.explanation, str) else "",
        )
        for r in latest.itertuples(index=False)
        if r.preferred in ("A", "B", "tie")
    }


def judge_agreement(
    store: RunStore | str | os.PathLike[str] | None = None,
    *,
    judge: str = "pairwise",
    dimension: str | None = None,
    votes: pd.DataFrame | None = None,
    confidence: float = 0.95,
    tie_margin: float = 0.0,
) -> Agreement:
    """How often ``judge``'s preference agrees with the human votes in ``store`` (or ``votes``).

    ``dimension``: for a per-clip judge, the score to compare (default: the sum of its numeric
    scores); ``tie_margin``: score differences up to this count as a tie. See the module docstring."""
    if not 0 < confidence < 1:
        raise InvalidInput(f"confidence must be between 0 and 1; got {confidence!r}")
    the_store = RunStore.coerce(store)
    if votes is None:
        from kling_lab.store.votes import load_votes

        votes = load_votes(the_store)
    runs = the_store.load(judgements=False)
    sha_of = dict(zip(runs["run_id"], runs["video_sha256"])) if len(runs) else {}
    facts = runs.set_index("run_id")[["prompt", "video_path"]] if len(runs) else pd.DataFrame()
    judged = dataset.judgements_frame(the_store)
    mine = judged[(judged["judge"] == judge) & (judged["status"] == "ok")] if len(judged) else judged
    pairwise = bool(len(mine)) and (mine["kind"] == "pairwise").all()
    if pairwise:
        prefs = _preferences(mine)
        basis = "its preference"
    else:
        scores, notes, basis = _scores(mine[mine["kind"] == "single"] if len(mine) else mine, dimension)

    records = []
    for vote in votes.to_dict("records") if len(votes) else []:
        left, right = sha_of.get(vote.get("left_run_id")), sha_of.get(vote.get("right_run_id"))
        if not isinstance(left, str) or not isinstance(right, str):
            continue
        human = "tie" if vote.get("choice") in ("tie", "both_bad") else vote.get("choice")
        if pairwise:
            if (left, right) in prefs:
                preferred, note = prefs[(left, right)]
                said = {"A": "left", "B": "right", "tie": "tie"}[preferred]
            elif (right, left) in prefs:
                preferred, note = prefs[(right, left)]
                said = {"A": "right", "B": "left", "tie": "tie"}[preferred]
            else:
                continue
            margin = 0.0 if said == "tie" else 1.0
        else:
            if left not in scores or right not in scores:
                continue
            diff = scores[left] - scores[right]
            said = "left" if diff > tie_margin else "right" if diff < -tie_margin else "tie"
            margin = abs(diff)
            note = " | ".join(n for n in (notes.get(left, ""), notes.get(right, "")) if n)
        records.append(
            {
                "vote_id": vote.get("vote_id"),
                "voter": vote.get("voter"),
                "human": human,
                "judge": said,
                "agree": human == said,
                "margin": margin,
                "prompt": vote.get("prompt"),
                "left_run_id": vote.get("left_run_id"),
                "right_run_id": vote.get("right_run_id"),
                "left_video": _fact(facts, vote.get("left_run_id")),
                "right_video": _fact(facts, vote.get("right_run_id")),
                "judge_explanation": note,
            }
        )
    table = pd.DataFrame.from_records(
        records,
        columns=[
            "vote_id", "voter", "human", "judge", "agree", "margin", "prompt",
            "left_run_id", "right_run_id", "left_video", "right_video", "judge_explanation",
        ],
    )  # fmt: skip
    decisive = table[table["human"].isin(["left", "right"])] if len(table) else table
    agree = int(decisive["agree"].sum()) if len(decisive) else 0
    low, high = wilson_interval(agree, len(decisive), confidence)
    kappa = cohens_kappa(list(table["human"]), list(table["judge"])) if len(table) else math.nan
    return Agreement(
        judge=judge,
        basis=basis,
        votes=len(votes),
        compared=len(table),
        decisive=len(decisive),
        agree=agree,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        kappa=kappa,
        per_voter=_per_voter(decisive, confidence),
        disagreements=_disagreements(decisive),
        table=table,
    )


def _fact(facts: pd.DataFrame, run_id: Any) -> Any:
    try:
        return facts.at[run_id, "video_path"]
    except (KeyError, ValueError):
        return None


def _per_voter(decisive: pd.DataFrame, confidence: float) -> pd.DataFrame:
    rows = []
    for voter, group in decisive.groupby("voter", sort=True, dropna=False) if len(decisive) else []:
        n, k = len(group), int(group["agree"].sum())
        low, high = wilson_interval(k, n, confidence)
        rows.append({"voter": voter, "votes": n, "agree": k, "rate": k / n, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=["voter", "votes", "agree", "rate", "ci_low", "ci_high"])


def _disagreements(decisive: pd.DataFrame) -> pd.DataFrame:
    """Votes the judge got wrong, the judge's strongest contrary preference first."""
    if not len(decisive):
        return decisive.copy()
    wrong = decisive[~decisive["agree"].astype(bool)].copy()
    wrong["_opposite"] = wrong["judge"] != "tie"
    wrong = wrong.sort_values(["_opposite", "margin"], ascending=[False, False], kind="stable")
    return wrong.drop(columns=["_opposite", "agree"]).reset_index(drop=True)


__all__ = ["Agreement", "cohens_kappa", "judge_agreement", "wilson_interval"]
