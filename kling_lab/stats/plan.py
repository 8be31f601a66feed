"""``kl.plan``: how many clips before you spend.

From the runs already in a store (or a small pilot it proposes and prices) it estimates the
repeat-to-repeat noise of a metric per *cell* (one setting of every input), then says how many repeats
per arm a fixed grid needs to tell apart two arms ``min_difference`` apart (power 0.8 at α 0.05, a
two-sided t-test: :func:`~kling_lab.stats.power.repeats_for_power`) and to pick the better of two such
arms 95 % of the time (:func:`~kling_lab.stats.power.repeats_to_pick`), and what that costs per model.
From votes it says how many separate the top arm's Bradley–Terry strength from the runner-up's
(:mod:`kling_lab.stats.adaptive_pairs`). The answer is a sentence (``str(plan)``) and a small table.

Noise: the SD pooled over the cells that have two or more clips (each clip once: a cache hit is its
source's clip again). When no setting was repeated, the residual SD of an additive model of the inputs
that vary (their main effects only: it assumes no interactions, so it can only overstate the noise),
flagged as such, with a pilot to confirm it. With neither, a pilot: 2 arms × 3 repeats.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kling_lab.errors import InvalidInput
from kling_lab.models import get_model, models, parse_request
from kling_lab.models.request import ModelRequest
from kling_lab.stats.effect import SETTING_COLUMNS
from kling_lab.stats.power import repeats_for_power, repeats_to_pick
from kling_lab.sweep import Sweep, SweepItem

PILOT_ARMS = 2


@dataclass(frozen=True)
class VotePlan:
    """How far a set of votes is from separating its top arm."""

    by: str
    votes: int
    top: str
    runner_up: str
    separated: bool
    votes_needed: int | None  # in all, at the current mix of pairs (None: top and runner-up tied)

    def __str__(self) -> str:
        head = f"Votes on {self.by} ({self.votes} so far): "
        if self.separated:
            return head + f"{self.top!r} is already separated from the rest."
        if self.votes_needed is None:
            return head + f"{self.top!r} and {self.runner_up!r} are tied so far; no number of votes is in sight."
        more = max(0, self.votes_needed - self.votes)
        return (
            head + f"about {self.votes_needed} votes in all ({more} more) separate {self.top!r} from the runner-up "
            f"{self.runner_up!r}, at the current mix of pairs; adaptive pairing (ab(..., adaptive=True)) needs fewer."
        )


@dataclass(frozen=True)
class Plan:
    """The answer of :func:`plan`: ``str()`` is the sentence, :attr:`table` the numbers."""

    metric: str
    min_difference: float | None
    power: float
    alpha: float
    confidence: float
    sd: float | None
    df: int
    noise_from: str  # "repeats", "additive model" or "" (not estimated)
    cells: pd.DataFrame
    arms: int
    model: str  # the model the sentence prices: the runs' (or the planned sweep's), else the default
    usd_per_clip: float | None
    repeats: int | None  # per arm, to detect min_difference with `power` at `alpha`
    repeats_to_pick: int | None  # per arm, to pick the better of two arms min_difference apart
    table: pd.DataFrame
    pilot: Sweep | None = None
    votes: VotePlan | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def pilot_cost_usd(self) -> float | None:
        return self.pilot.total_usd() if self.pilot is not None else None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.sd is None:
            parts.append(f"{self.metric}: no clips measure the repeat-to-repeat noise yet.")
        else:
            where = (
                f"pooled over {int((self.cells['n'] >= 2).sum())} settings with repeats"
                if self.noise_from == "repeats"
                else "residual of an additive model of the inputs: no setting was repeated, so this assumes "
                "no interactions and may overstate the noise"
            )
            parts.append(f"{self.metric}: repeats of one setting differ by {self.sd:.3g} (SD; {where}; {self.df} df).")
        if self.repeats is not None and self.min_difference is not None:
            clips = self.repeats * self.arms
            pick = (self.repeats_to_pick or 0) * self.arms
            name = get_model(self.model).name
            cost = f", ${clips * self.usd_per_clip:,.2f} on {name}" if self.usd_per_clip is not None else ""
            pick_cost = f", ${pick * self.usd_per_clip:,.2f}" if self.usd_per_clip is not None else ""
            parts.append(
                f"To tell apart two arms {self.min_difference:.3g} apart (power {self.power:.0%}, α {self.alpha:g}), "
                f"a fixed grid needs {self.repeats} repeats per arm: {clips} clips over {self.arms} arms{cost}; "
                f"to pick the better of two such arms {self.confidence:.0%} of the time, {self.repeats_to_pick} "
                f"per arm ({pick} clips{pick_cost}). The table prices both on every model."
            )
            parts.append(
                "A race spends repeats only on arms still in contention: "
                f"kl.run(sweep, strategy='race', metric={self.metric!r}, min_difference={self.min_difference:.3g}, "
                "higher_is_better=...)."
            )
        if self.pilot is not None:
            parts.append(
                f"Pilot: {len(self.pilot)} clips ({PILOT_ARMS} arms × {len(self.pilot) // PILOT_ARMS} repeats, "
                f"${self.pilot.total_usd():.2f}) measure the noise: kl.run(plan.pilot), then plan again."
            )
        parts.extend(self.notes)
        if self.votes is not None:
            parts.append(str(self.votes))
        return " ".join(parts)

    def _repr_html_(self) -> str:
        from html import escape

        table = self.table.to_html(index=False) if len(self.table) else ""
        return f"<p>{escape(str(self))}</p>{table}"


def plan(
    runs: pd.DataFrame | None = None,
    metric: str = "qc_motion",
    min_difference: float | None = None,
    *,
    arms: int | Sweep | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
    confidence: float = 0.95,
    store: Any = None,
    votes: pd.DataFrame | None = None,
    by: str | None = None,
    pilot_repeats: int = 3,
) -> Plan:
    """How many repeats (clips, dollars) a fixed grid needs to see ``min_difference`` in ``metric``.

    ``runs``: a runs DataFrame (default: every run in ``store``). ``min_difference``: the smallest
    difference you care about, in the metric's units (default: one SD of the repeat noise). ``arms``:
    how many arms the grid will have (a number or the Sweep you plan; default: the settings in
    ``runs``). ``votes`` / ``by``: also say how many votes separate the top arm (default: the store's
    votes, when there are any)."""
    _check(metric, min_difference, power, alpha, confidence, pilot_repeats)
    if runs is None:
        from kling_lab.store.run_store import load_runs

        runs = load_runs(store)
    if len(runs.columns) and metric not in runs.columns:
        raise InvalidInput(f"runs has no column {metric!r}")
    if len(runs) and metric in runs.columns and not pd.api.types.is_numeric_dtype(runs[metric]):
        raise InvalidInput(f"{metric!r} is not numeric: pass a qc_* column or another numeric run-log column")
    clips = _clips(runs, metric)
    settings = [c for c in SETTING_COLUMNS if c in clips.columns and clips[c].nunique(dropna=False) > 1]
    cells = _cells(clips, metric)
    sd, df, noise_from = _noise(clips, cells, metric, settings)
    n_arms = _arms(arms, cells)
    model, usd_per_clip = _priced_model(runs, arms)
    difference = min_difference if min_difference is not None else sd
    notes: list[str] = []
    if min_difference is None and sd is not None:
        notes.append(f"(min_difference: not given; one SD of the noise, {sd:.3g}, was used.)")
    repeats = pick = None
    if sd is not None and difference:
        repeats = repeats_for_power(sd, difference, power, alpha)
        pick = max(2, repeats_to_pick(sd, difference, confidence))
    pilot = None
    if sd is None or noise_from == "additive model":
        pilot = _pilot(arms, clips, pilot_repeats)
        if pilot is None:
            notes.append("Pass arms=<the sweep you plan> to get a priced pilot.")
    return Plan(
        metric=metric,
        min_difference=difference,
        power=power,
        alpha=alpha,
        confidence=confidence,
        sd=sd,
        df=df,
        noise_from=noise_from,
        cells=cells,
        arms=n_arms,
        model=model,
        usd_per_clip=usd_per_clip,
        repeats=repeats,
        repeats_to_pick=pick,
        table=_table(repeats, pick, n_arms, model, usd_per_clip, power, alpha),
        pilot=pilot,
        votes=_votes(votes, by, store, confidence),
        notes=tuple(notes),
    )


def _check(metric: Any, min_difference: Any, power: Any, alpha: Any, confidence: Any, pilot_repeats: Any) -> None:
    if not isinstance(metric, str):
        raise InvalidInput(f"metric must be a run-log column name, e.g. 'qc_motion'; got {metric!r}")
    d = min_difference
    if d is not None and (isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or d <= 0):
        raise InvalidInput(f"min_difference must be a number > 0 in the metric's units; got {d!r}")
    for name, value in (("power", power), ("alpha", alpha), ("confidence", confidence)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise InvalidInput(f"{name} must be a number between 0 and 1; got {value!r}")
    if isinstance(pilot_repeats, bool) or not isinstance(pilot_repeats, int) or pilot_repeats < 2:
        raise InvalidInput(f"pilot_repeats must be an integer >= 2; got {pilot_repeats!r}")


def _clips(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """ok runs with a value, each clip once (a cache hit is its source's clip again)."""
    if not len(runs) or metric not in runs.columns:
        return runs.iloc[0:0]
    df = runs
    if "status" in df.columns:
        df = df[(df["status"] == "ok").fillna(False).astype(bool)]
    df = df[pd.to_numeric(df[metric], errors="coerce").notna()]
    if "video_sha256" in df.columns:
        clip = df["video_sha256"]
        df = df[clip.isna() | ~clip.duplicated()]
    return df.reset_index(drop=True)


def _cells(clips: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per setting: its clips, mean and SD."""
    keys = [c for c in SETTING_COLUMNS if c in clips.columns]
    if not len(clips) or not keys:
        return pd.DataFrame(columns=[*keys, "n", "mean", "sd"])
    grouped = clips.groupby(keys, dropna=False, sort=True)[metric]
    cells = grouped.agg(n="count", mean="mean", sd="std").reset_index()
    return cells


def _noise(
    clips: pd.DataFrame, cells: pd.DataFrame, metric: str, settings: Sequence[str]
) -> tuple[float | None, int, str]:
    repeated = cells[cells["n"] >= 2]
    df = int((repeated["n"] - 1).sum())
    if df > 0:
        ss = float(((repeated["n"] - 1) * repeated["sd"] ** 2).sum())
        return math.sqrt(ss / df), df, "repeats"
    if not settings or len(clips) < 3:
        return None, 0, ""
    design = pd.get_dummies(clips[list(settings)].astype(str), drop_first=True).to_numpy(dtype=float)
    x = np.column_stack([np.ones(len(clips)), design])
    y = clips[metric].to_numpy(dtype=float)
    rank = int(np.linalg.matrix_rank(x))
    df = len(y) - rank
    if df < 2:
        return None, 0, ""
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ beta
    return math.sqrt(float(residual @ residual) / df), df, "additive model"


def _arms(arms: int | Sweep | None, cells: pd.DataFrame) -> int:
    if isinstance(arms, Sweep):
        return len({item.request.fingerprint(0) for item in arms.items})
    if arms is not None:
        if isinstance(arms, bool) or not isinstance(arms, int) or arms < 2:
            raise InvalidInput(f"arms must be a Sweep or an integer >= 2; got {arms!r}")
        return arms
    return max(2, len(cells))


def request_of(record: Mapping[str, Any]) -> ModelRequest | None:
    """The request a run-log row was made from (its model and ``arguments_json``; older rows: the input
    columns); None when it cannot be rebuilt (e.g. an image input)."""
    model = record.get("model") or None
    text = record.get("arguments_json")
    try:
        if isinstance(text, str) and text:
            return parse_request(get_model(model), json.loads(text))
        fields = ("prompt", "negative_prompt", "cfg_scale", "aspect_ratio")
        data = {k: record[k] for k in fields if record.get(k) is not None and not _missing(record[k])}
        if record.get("duration_s") is not None and not _missing(record["duration_s"]):
            data["duration"] = str(int(record["duration_s"]))
        return parse_request(get_model(model), data)
    except (InvalidInput, ValueError, TypeError):
        return None


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _pilot(arms: int | Sweep | None, clips: pd.DataFrame, repeats: int) -> Sweep | None:
    """Two arms × ``repeats``: from the planned sweep, else from the settings already in the store."""
    requests: dict[str, ModelRequest] = {}
    if isinstance(arms, Sweep):
        for item in arms.items:
            requests.setdefault(item.request.fingerprint(0), item.request)
    else:
        for record in clips.to_dict("records"):
            request = request_of({str(k): v for k, v in record.items()})
            if request is not None:
                requests.setdefault(request.fingerprint(0), request)
    chosen = list(requests.values())[:PILOT_ARMS]
    if not chosen:
        return None
    items = [SweepItem(request=r, repeat=k, index=0) for r in chosen for k in range(repeats)]
    items = [SweepItem(request=i.request, repeat=i.repeat, index=n) for n, i in enumerate(items)]
    return Sweep(name="pilot", items=tuple(items), tags={"plan": "pilot"})


def _priced_model(runs: pd.DataFrame, arms: int | Sweep | None) -> tuple[str, float | None]:
    """The model the plan is for, and what one of its clips costs: the planned sweep's mean price per clip,
    else what the store's paid ok clips cost, else the model's default clip."""
    if isinstance(arms, Sweep) and len(arms):
        prices = [item.cost_usd for item in arms.items]
        known = [p for p in prices if p is not None]
        return arms.items[0].request.alias, (sum(known) / len(known) if known else None)
    alias = get_model(None).alias
    if len(runs) and "model" in runs.columns and runs["model"].notna().any():
        alias = str(runs["model"].dropna().mode().iloc[0])
    if len(runs) and {"status", "cost_usd"} <= set(runs.columns):
        paid = runs[(runs["status"] == "ok").fillna(False).astype(bool) & (runs["cost_usd"].fillna(0) > 0)]
        if "model" in paid.columns:
            paid = paid[paid["model"].fillna(alias) == alias]
        if len(paid):
            return alias, float(paid["cost_usd"].mean())
    return alias, _default_clip_usd(alias)


def _default_clip_usd(alias: str) -> float | None:
    model = get_model(alias)
    endpoint = model.t2v or model.i2v
    if endpoint is None:
        return None
    price = endpoint.price.usd({}, endpoint.default_duration_s)
    return None if price is None else float(price)


def _table(
    repeats: int | None,
    pick: int | None,
    arms: int,
    model: str,
    usd_per_clip: float | None,
    power: float,
    alpha: float,
) -> pd.DataFrame:
    """Per model: the price of a clip and of the two fixed grids (the plan's model first, at its own price)."""
    if repeats is None or pick is None:
        return pd.DataFrame()
    detect, choose = f"detect: {repeats}/arm (USD)", f"pick: {pick}/arm (USD)"
    rows = []
    for m in models():
        price = usd_per_clip if m.alias == model else _default_clip_usd(m.alias)
        if price is None:
            continue
        rows.append(
            {
                "model": m.alias,
                "USD per clip": round(price, 4),
                detect: round(repeats * arms * price, 2),
                choose: round(pick * arms * price, 2),
            }
        )
    table = pd.DataFrame(rows)
    if len(table):
        table = table.sort_values("model", key=lambda c: c != model, kind="stable").reset_index(drop=True)
    table.attrs["power"], table.attrs["alpha"] = power, alpha
    return table


def _votes(votes: pd.DataFrame | None, by: str | None, store: Any, confidence: float) -> VotePlan | None:
    if votes is None:
        if store is None and by is None:
            return None
        from kling_lab.store.votes import load_votes

        try:
            votes = load_votes(store)
        except (OSError, ValueError):
            return None
    usable = votes[votes["left_arm"].notna() & votes["right_arm"].notna() & (votes["left_arm"] != votes["right_arm"])]
    if by is not None:
        usable = usable[usable["by"] == by]
    if not len(usable):
        return None
    if by is None:
        by = str(usable["by"].value_counts().index[0])
        usable = usable[usable["by"] == by]
    return vote_plan(usable, by, confidence)


def vote_plan(votes: pd.DataFrame, by: str, confidence: float = 0.95) -> VotePlan:
    """The top arm of ``votes`` (one ``by``), its runner-up, and the votes that would separate them."""
    from kling_lab.stats.adaptive_pairs import SCORES, fit, separation, tallies, votes_to_separate

    arms = sorted(set(votes["left_arm"]) | set(votes["right_arm"]))
    index = {a: i for i, a in enumerate(arms)}
    wins, counts = tallies(
        len(arms),
        [index[a] for a in votes["left_arm"]],
        [index[a] for a in votes["right_arm"]],
        [SCORES[c] for c in votes["choice"]],
    )
    model = fit(wins, counts, arms)
    order = np.argsort(-model.theta)
    sep = separation(model, confidence, decide=False)
    return VotePlan(
        by=by,
        votes=model.votes,
        top=arms[int(order[0])],
        runner_up=arms[int(order[1])],
        separated=sep.separated,
        votes_needed=votes_to_separate(model, confidence),
    )


__all__ = ["Plan", "VotePlan", "plan", "request_of", "vote_plan"]
