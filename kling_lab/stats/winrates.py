"""Win rates and Bradley–Terry strengths of the arms from blind A/B votes.

Scoring: a ``left``/``right`` vote is a win for that side's arm and a loss for the other; ``tie``
and ``both_bad`` count as a tie, i.e. half a win for each arm (``both_bad`` is also counted on its
own). ``win_rate = (wins + ties / 2) / n``.

Bradley–Terry: P(i beats j) = p_i / (p_i + p_j). Strengths are fitted by Hunter's (2004) MM
algorithm, p_i ← W_i / Σ_j n_ij / (p_i + p_j), with ties as half-wins in W_i (and whole
comparisons in n_ij), then normalised to sum to 1. ``prior`` pseudo-comparisons, scored as ties,
are added between every pair of arms so the fit stays finite when an arm never wins or two arms
never met (Hunter's condition); 0.5 is negligible against a few dozen votes per pair.

Intervals: 95 % percentile bootstrap, resampling whole votes with replacement (seedable).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = [
    "by",
    "arm",
    "n",
    "wins",
    "losses",
    "ties",
    "both_bad",
    "win_rate",
    "win_rate_low",
    "win_rate_high",
    "strength",
    "strength_low",
    "strength_high",
]
NO_VOTES = "No votes yet: cast some with ab(runs, by=...) and read them with load_votes(store)."


def bradley_terry(
    wins: np.ndarray, counts: np.ndarray, *, prior: float = 0.5, tol: float = 1e-10, max_iter: int = 10_000
) -> np.ndarray:
    """Strengths (summing to 1) from ``wins[..., i, j]`` (score of i against j) and symmetric ``counts``.

    Leading axes are batches (e.g. bootstrap replicates), fitted all at once.
    """
    k = wins.shape[-1]
    off = 1.0 - np.eye(k)
    w = wins + prior / 2 * off
    n = counts + prior * off
    total_wins = w.sum(axis=-1)
    p = np.full(wins.shape[:-1], 1.0 / k)
    for _ in range(max_iter):
        denom = (n / (p[..., :, None] + p[..., None, :])).sum(axis=-1)
        new = total_wins / denom
        new /= new.sum(axis=-1, keepdims=True)
        if np.max(np.abs(new - p)) < tol:
            return new
        p = new
    return p


def _outcomes(votes: pd.DataFrame, arms: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per vote: left arm index, right arm index, left's score (1, 0 or 0.5)."""
    index = {a: i for i, a in enumerate(arms)}
    left = votes["left_arm"].map(index).to_numpy(int)
    right = votes["right_arm"].map(index).to_numpy(int)
    score = votes["choice"].map({"left": 1.0, "right": 0.0, "tie": 0.5, "both_bad": 0.5}).to_numpy(float)
    return left, right, score


def _matrices(weights: np.ndarray, left: np.ndarray, right: np.ndarray, score: np.ndarray, k: int):
    """Win and count matrices for each row of vote ``weights`` (how often each vote is drawn)."""
    per_vote_w = np.zeros((len(left), k * k))
    per_vote_n = np.zeros((len(left), k * k))
    rows = np.arange(len(left))
    per_vote_w[rows, left * k + right] = score
    per_vote_w[rows, right * k + left] = 1.0 - score
    per_vote_n[rows, left * k + right] = 1.0
    per_vote_n[rows, right * k + left] = 1.0
    shape = (*weights.shape[:-1], k, k)
    return (weights @ per_vote_w).reshape(shape), (weights @ per_vote_n).reshape(shape)


def _group(votes: pd.DataFrame, by: str, n_boot: int, rng: np.random.Generator, prior: float) -> pd.DataFrame:
    """The table rows of one ``by`` parameter's votes."""
    arms = sorted(set(votes["left_arm"]) | set(votes["right_arm"]))
    left, right, score = _outcomes(votes, arms)
    v = len(votes)
    draws = rng.multinomial(v, np.full(v, 1.0 / v), size=n_boot).astype(float)
    w, n = _matrices(np.vstack([np.ones((1, v)), draws]), left, right, score, len(arms))
    strength = bradley_terry(w, n, prior=prior)  # row 0: the data itself; rows 1..: bootstrap replicates
    played = n.sum(axis=-1)
    rate = np.divide(w.sum(axis=-1), played, out=np.full_like(played, np.nan), where=played > 0)
    s_lo, s_hi = np.nanpercentile(strength[1:], [2.5, 97.5], axis=0)
    r_lo, r_hi = np.nanpercentile(rate[1:], [2.5, 97.5], axis=0)
    both_bad = (votes["choice"] == "both_bad").to_numpy()
    rows = []
    for i, arm in enumerate(arms):
        here = (left == i) | (right == i)
        won = ((left == i) & (score == 1)) | ((right == i) & (score == 0))
        lost = ((left == i) & (score == 0)) | ((right == i) & (score == 1))
        n_i, wins, losses = int(here.sum()), int(won.sum()), int(lost.sum())
        rows.append(
            [
                by,
                arm,
                n_i,
                wins,
                losses,
                n_i - wins - losses,
                int((here & both_bad).sum()),
                rate[0, i],
                r_lo[i],
                r_hi[i],
                strength[0, i],
                s_lo[i],
                s_hi[i],
            ]
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def win_rates(votes: pd.DataFrame, *, n_boot: int = 1000, seed: int | None = 0, prior: float = 0.5) -> pd.DataFrame:
    """One row per arm (per ``by`` parameter): n, wins, losses, ties, win rate and BT strength with 95 % CIs.

    Ties and "both bad" count as half a win each (see the module docstring). Sorted by strength,
    strongest first. No votes: an empty table whose ``attrs["message"]`` says so.
    """
    usable = (
        votes[votes["left_arm"].notna() & votes["right_arm"].notna() & (votes["left_arm"] != votes["right_arm"])]
        if len(votes)
        else votes
    )
    if not len(usable):
        table = pd.DataFrame(columns=COLUMNS)
        table.attrs["message"] = NO_VOTES
        return table
    rng = np.random.default_rng(seed)
    parts = [_group(group, str(by), n_boot, rng, prior) for by, group in usable.groupby("by", sort=True)]
    table = pd.concat(parts, ignore_index=True)
    return table.sort_values(["by", "strength"], ascending=[True, False], kind="stable").reset_index(drop=True)
