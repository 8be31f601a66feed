"""Run a sweep as a race: spend repeats only on the arms still in contention.

``kl.run(sweep, strategy="race", metric="qc_motion", higher_is_better=True, confidence=0.95)``.
The arms are the sweep's distinct requests. Each round is one ordinary sweep through the public
:class:`~kling_lab.runner.orchestrator.Runner` (cache, journal, claims, budget, retries all apply):
round 1 asks every arm for ``initial_repeats`` clips, later rounds ask only the arms still in
contention for more. What to eliminate, when to stop and how many clips each arm gets next is
decided by :func:`kling_lab.stats.race_rule.decide` (the statistics and what ``confidence`` promises
are explained there and in :mod:`kling_lab.stats.bounds`).

**Resuming.** Arm ``a``'s clips have the repeat indexes ``0, 1, 2, …`` in the order the rounds ask for
them, and every decision is a function of the clips so far, so a re-run of a killed race replays its
finished rounds from the cache ($0, no submission), re-attaches the journaled requests of the round it
was in, and goes on exactly where it stopped: nothing is paid twice.

**Logged.** Every row of a race carries tags in ``params_json``: ``race`` (the race id, stable across
re-runs), ``race_round``, ``race_alive`` (indexes of the arms in contention that round, into
:attr:`RaceResult.arms`) and ``race_metric``.

The sweep's own ``repeats`` are ignored: the race decides how many clips each arm gets. ``force=True``
bypasses the cache, so a re-run of a forced race pays again.

**Budget.** ``max_cost_usd`` caps what the race's clips cost at fal's prices, counting clips reused
from the cache (so a resumed race stops where the original would have); a round that would go over it
is not started. A budget smaller than the first round is refused before anything is submitted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from kling_lab.backends import Backend
from kling_lab.errors import InvalidInput
from kling_lab.models.request import ModelRequest
from kling_lab.runner.options import RunResult
from kling_lab.runner.orchestrator import Runner
from kling_lab.runner.plan import Plan
from kling_lab.stats.race_rule import STOPS, Look, RaceRule, decide
from kling_lab.store.run_store import RunStore
from kling_lab.store.schema import RUN_COLUMNS
from kling_lab.sweep import Sweep, SweepItem
from kling_lab.util.text import truncate

log = logging.getLogger("kling_lab.race")

Metric = str | Callable[[pd.Series], float]
NUMERIC_COLUMNS = tuple(
    name for name, typ, _ in RUN_COLUMNS if str(typ).startswith(("double", "float", "int")) and name != "sweep_index"
)


def metric_name(metric: Metric) -> str:
    """A column's name, or a callable's qualified name."""
    if isinstance(metric, str):
        return metric
    return getattr(metric, "__qualname__", None) or getattr(metric, "__name__", None) or type(metric).__name__


def check_metric(metric: Any) -> None:
    """Raise :class:`InvalidInput` unless ``metric`` is a numeric run-log column or a callable of a row."""
    if callable(metric):
        return
    qc = ", ".join(c for c in NUMERIC_COLUMNS if c.startswith("qc_"))
    if not isinstance(metric, str):
        raise InvalidInput(f"metric must be a run-log column name (e.g. {qc}) or a function of a row; got {metric!r}")
    if metric not in NUMERIC_COLUMNS:
        raise InvalidInput(
            f"metric {metric!r} is not a numeric run-log column; use one of {qc} (or another numeric column), "
            "or pass a function of a row from Python"
        )


def metric_values(metric: Metric, frame: pd.DataFrame) -> pd.Series:
    """The metric of each row of ``frame`` (NaN where a row has none)."""
    if isinstance(metric, str):
        return pd.to_numeric(frame[metric], errors="coerce").astype("float64")
    if not len(frame):
        return pd.Series([], dtype="float64")
    return pd.to_numeric(frame.apply(metric, axis=1), errors="coerce").astype("float64")


@dataclass(frozen=True)
class Arm:
    """One arm of a race: a distinct request of the sweep, and a label naming what sets it apart."""

    index: int
    request: ModelRequest
    label: str

    @property
    def price_usd(self) -> float:
        return self.request.cost_usd() or 0.0  # kl.run refuses a sweep with an unpriced model first


def arms_of(sweep: Sweep) -> list[Arm]:
    """The sweep's distinct requests, in sweep order, labelled by the inputs that vary between them (inputs
    only some models take are left out of the label)."""
    requests: dict[str, ModelRequest] = {}
    for item in sweep.items:
        requests.setdefault(item.request.fingerprint(0), item.request)
    inputs = [{"model": r.alias, **r.arguments()} for r in requests.values()]
    shared = [k for k in dict.fromkeys(k for a in inputs for k in a) if all(k in a for a in inputs)]
    varying = [k for k in shared if len({json.dumps(a[k], default=str) for a in inputs}) > 1]  # model first

    def label(args: Mapping[str, Any]) -> str:
        shown = varying or ["prompt"]
        return ", ".join(f"{k}={_short(args.get(k))}" for k in shown)

    return [Arm(i, r, label(a)) for i, (r, a) in enumerate(zip(requests.values(), inputs))]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return repr(truncate(value, 32))
    return str(value)


@dataclass
class RaceResult:
    """What a race did: its rounds, its looks, the winner and what it saved."""

    race_id: str
    metric: str
    rule: RaceRule
    arms: list[Arm]
    store: RunStore
    backend: str
    rounds: list[RunResult] = field(default_factory=list)
    looks: list[Look] = field(default_factory=list)
    planned: list[int] = field(default_factory=list)  # clips asked for, per arm
    stop: str | None = None
    interrupted: bool = False

    # -- the answer --------------------------------------------------------------------------
    @property
    def last(self) -> Look | None:
        return self.looks[-1] if self.looks else None

    @property
    def winner(self) -> Arm | None:
        return self.arms[self.last.leader] if self.last is not None and self.stop != "unmeasured" else None

    @property
    def clips(self) -> int:
        """Clips the race asked for (new or from the cache)."""
        return sum(self.planned)

    @property
    def cost_usd(self) -> float:
        """What the race's clips cost at fal's prices, paid now or earlier (cache hits included)."""
        return round(sum(n * a.price_usd for n, a in zip(self.planned, self.arms)), 2)

    @property
    def grid_repeats(self) -> int:
        """Repeats per arm of the fixed grid the race is compared with: the cap, or the most any arm got."""
        cap = self.last.cap if self.last is not None else None
        return cap if cap is not None else max(self.planned, default=0)

    @property
    def grid_cost_usd(self) -> float:
        return round(sum(self.grid_repeats * a.price_usd for a in self.arms), 2)

    @property
    def saved_usd(self) -> float:
        return round(self.grid_cost_usd - self.cost_usd, 2)

    # -- like RunResult ----------------------------------------------------------------------
    @property
    def rows(self) -> list[dict[str, Any]]:
        return [row for r in self.rounds for row in r.rows]

    @property
    def submitted(self) -> int:
        return sum(r.submitted for r in self.rounds)

    @property
    def pending(self) -> int:
        return sum(r.pending for r in self.rounds)

    @property
    def cache_hits(self) -> int:
        return sum(r.cache_hits for r in self.rounds)

    @property
    def busy(self) -> int:
        """Requests not submitted because another runner held their claim (all rounds)."""
        return sum(r.busy for r in self.rounds)

    @property
    def held(self) -> int:
        """Ambiguous submits whose price is still held until reconciled (all rounds)."""
        return sum(r.held for r in self.rounds)

    @property
    def spent_usd(self) -> float:
        """What this run paid (cache hits are $0)."""
        return round(sum(r.spent_usd for r in self.rounds), 2)

    def count(self, status: str) -> int:
        return sum(r.count(status) for r in self.rounds)

    def frame(self) -> pd.DataFrame:
        """Every row of the race (all rounds) as a typed DataFrame, like :func:`kling_lab.load_runs`."""
        from kling_lab.store.run_store import rows_frame

        return rows_frame(self.rows, self.store)

    def table(self) -> pd.DataFrame:
        """One row per arm: its clips, mean and bounds at the last look, and how it fared."""
        look = self.last
        records = []
        for arm in self.arms:
            b = look.bounds[arm.index] if look is not None else None
            out = look.eliminated_in[arm.index] if look is not None else None
            if look is not None and arm.index == look.leader and self.winner is not None:
                fate = "winner"
            elif out is not None:
                fate = f"out in round {out}"
            else:
                fate = "in contention"
            records.append(
                {
                    "arm": arm.label,
                    "model": arm.request.alias,
                    **arm.request.arguments(),
                    "clips": self.planned[arm.index] if self.planned else 0,
                    "n": b.n if b else 0,
                    "mean": b.mean if b else math.nan,
                    "lower": b.lower if b else math.nan,
                    "upper": b.upper if b else math.nan,
                    "fate": fate,
                }
            )
        return pd.DataFrame(records)

    def summary(self) -> str:
        direction = "higher" if self.rule.higher_is_better else "lower"
        head = "interrupted: " if self.interrupted else ""
        rounds = len(self.looks)
        text = f"{head}race on {self.metric} ({direction} is better), {len(self.arms)} arms, {rounds} round(s): "
        winner, look = self.winner, self.last
        if winner is None or look is None:
            text += "no winner (" + STOPS.get(self.stop or "", "not started") + "). "
        else:
            b = look.bounds[winner.index]
            text += f"winner {winner.label} ({self.metric} {b.mean:.4g}, {b.n} clips). {self._confidence()} "
        money = "at fal prices (emulator: nothing was spent)" if self.backend == "emulator" else "at fal prices"
        text += f"{self.clips} clips, ${self.cost_usd:.2f} {money}"
        if self.cache_hits:
            text += f" ({self.cache_hits} from the cache, $0 this time)"
        if self.grid_repeats:
            share = self.saved_usd / self.grid_cost_usd if self.grid_cost_usd else 0.0
            text += (
                f"; a fixed grid of {len(self.arms)} × {self.grid_repeats} = {len(self.arms) * self.grid_repeats} "
                f"clips would cost ${self.grid_cost_usd:.2f}: saved ${self.saved_usd:.2f} ({share:.0%})"
            )
        counts = [f"{self.count(s)} {s}" for s in ("failed", "cancelled", "skipped_budget") if self.count(s)]
        if counts or self.pending:
            text += "; " + ", ".join(counts + ([f"{self.pending} pending at fal"] if self.pending else []))
        return f"{text}; store {self.store.location}"

    def _confidence(self) -> str:
        look, c = self.last, self.rule.confidence
        assert look is not None
        left = [self.arms[i].label for i in look.contenders if i != look.leader]
        why = STOPS.get(self.stop or "", "")
        if not left:
            separation = ""
        elif look.separation >= 0.5:
            separation = f"the winner is separated from them at {look.separation:.0%}"
        else:
            separation = "the winner is not separated from them even at 50%"
        if self.stop == "separated":
            return f"Stopped: {why}; it is the best with confidence ≥ {c:.0%}."
        if self.stop == "within_difference":
            return (
                f"Stopped: {why}; it is within {self.rule.min_difference:g} of the best with confidence ≥ {c:.0%} "
                f"({len(left)} arm(s) still in contention)."
            )
        if self.stop == "cap" and self.rule.max_repeats is None and self.rule.min_difference is not None:
            return (
                f"Stopped: {why} ({look.cap} each; {len(left)} other arm(s) still in contention: {separation}); it is "
                f"the best with confidence ≥ {c:.0%} if it leads the others by {self.rule.min_difference:g} or more."
            )
        if self.stop == "cap":
            return f"Stopped: {why} ({look.cap} each, like a fixed grid); {separation or 'no arm left to separate'}."
        named = ", ".join(left[:3]) + (", …" if len(left) > 3 else "")
        return f"Stopped: {why}; the leader is not separated at {c:.0%} from {named} ({separation})."

    __str__ = summary

    def _repr_html_(self) -> str:
        from html import escape

        return f"<pre>{escape(self.summary())}</pre>" + self.table().to_html(
            index=False, float_format=lambda x: f"{x:.4g}"
        )


def race_id_of(sweep: Sweep, arms: Sequence[Arm], metric: str, rule: RaceRule) -> str:
    """Stable across re-runs of the same race (so its rows can be found, and it resumes)."""
    key = json.dumps(
        {"arms": [a.request.fingerprint(0) for a in arms], "metric": metric, "rule": dataclasses.asdict(rule)},
        sort_keys=True,
        default=str,
    )
    return f"{sweep.name}-race-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def plan_race(
    sweep: Sweep,
    *,
    metric: Any,
    higher_is_better: Any = None,
    confidence: Any = 0.95,
    min_difference: Any = None,
    initial_repeats: Any = None,
    max_repeats: Any = None,
    max_rounds: Any = 10,
    max_cost_usd: float | None = None,
) -> tuple[RaceRule, list[Arm]]:
    """Validate a race before anything starts (one-line :class:`InvalidInput` for bad input)."""
    check_metric(metric)
    if initial_repeats == 0 and not isinstance(initial_repeats, bool):
        raise InvalidInput("initial_repeats must be an integer >= 2; got 0")
    rule = RaceRule(
        higher_is_better=higher_is_better,
        confidence=confidence,
        initial_repeats=initial_repeats if initial_repeats is not None else 0,
        max_repeats=max_repeats,
        min_difference=min_difference,
        max_rounds=max_rounds,
    )
    arms = arms_of(sweep)
    first = rule.first_round(len(arms))
    first_cost = round(sum(n * a.price_usd for n, a in zip(first, arms)), 2)
    if max_cost_usd is not None and first_cost > max_cost_usd + 1e-9:
        raise InvalidInput(
            f"budget ${max_cost_usd:.2f} is smaller than the race's first round: {len(arms)} arms × "
            f"{rule.initial_repeats} clips = ${first_cost:.2f}; raise max_cost_usd or race fewer arms"
        )
    return rule, arms


RunnerFactory = Callable[..., Runner]  # (backend, max_cost_usd=..., **options) -> Runner


async def race_async(
    sweep: Sweep,
    new_runner: RunnerFactory,
    *,
    metric: Any,
    higher_is_better: Any = None,
    confidence: Any = 0.95,
    min_difference: Any = None,
    initial_repeats: Any = None,
    max_repeats: Any = None,
    max_rounds: Any = 10,
    backend: str | Backend | None = "emulator",
    max_cost_usd: float | None = None,
    **options: Any,
) -> RaceResult:
    """Run ``sweep`` as a race (see the module docstring). ``new_runner(backend, max_cost_usd=…, **options)``
    makes each round's Runner (``kling_lab.run`` passes ``make_runner``: the cap rules and media hook apply)."""
    race = dict(
        metric=metric,
        higher_is_better=higher_is_better,
        confidence=confidence,
        min_difference=min_difference,
        initial_repeats=initial_repeats,
        max_repeats=max_repeats,
        max_rounds=max_rounds,
    )
    plan_race(sweep, **race, max_cost_usd=max_cost_usd)  # bad input fails here, before any backend starts
    runner = new_runner(backend, max_cost_usd=max_cost_usd, **options)
    try:
        budget = runner.options.max_cost_usd  # the real fal backend always has one (kl.run's default cap)
        rule, arms = plan_race(sweep, **race, max_cost_usd=budget)
        label = metric_name(metric)
        result = RaceResult(race_id_of(sweep, arms, label, rule), label, rule, arms, runner.store, runner.backend.name)
        await _race(runner, new_runner, sweep, metric, result, budget, options)
    finally:
        await runner.backend.aclose()
    return result


async def _race(
    runner: Runner | None,
    new_runner: RunnerFactory,
    sweep: Sweep,
    metric: Metric,
    result: RaceResult,
    budget: float | None,
    options: dict[str, Any],
) -> None:
    assert runner is not None
    backend = runner.backend
    rule, arms = result.rule, result.arms
    k = len(arms)
    planned = [0] * k
    values: list[list[float]] = [[] for _ in range(k)]
    asks = list(rule.first_round(k))
    alive: Sequence[bool] = [True] * k
    eliminated: Sequence[int | None] = [None] * k
    round = 1
    while True:
        if budget is not None:
            ask_cost = sum(n * a.price_usd for n, a in zip(asks, arms))
            if result.cost_usd + ask_cost > budget + 1e-9:
                result.stop = "budget"
                return
        items, where = _round_items(arms, planned, asks)
        tags = {**dict(sweep.tags), "race": result.race_id, "race_round": round, "race_metric": result.metric}
        tags["race_alive"] = [i for i in range(k) if alive[i]]
        round_sweep = Sweep(name=sweep.name, items=tuple(items), tags=tags, description=sweep.description)
        if runner is None:
            remaining = None if budget is None else max(0.0, budget - result.cost_usd)
            runner = new_runner(backend, max_cost_usd=remaining, **options)
        arms_asked = sum(1 for n in asks if n)

        def show(plan: Plan, runner: Runner = runner, number: int = round, arms_asked: int = arms_asked) -> None:
            """Each round's plan line (from the cache / re-attached / to pay): always on real fal."""
            if backend.name == "fal" or options.get("progress", True):
                line = plan.describe(backend.name, runner.options.concurrency, runner.options.max_cost_usd)
                print(f"race round {number} ({arms_asked} arms): {line}", file=sys.stderr)

        try:
            run = await runner.run(round_sweep, on_plan=show)
        except BaseException:
            if runner.last_result is not None:
                result.rounds.append(runner.last_result)
            result.interrupted = True
            raise
        result.rounds.append(run)
        for i, n in enumerate(asks):
            planned[i] += n
        result.planned = list(planned)
        _collect(metric, run, where, values)
        look = decide(rule, values, planned, alive, round, eliminated)
        result.looks.append(look)
        log.info("race %s round %d: %d arms in contention", result.race_id, round, len(look.contenders))
        if look.stop is not None:
            result.stop = look.stop
            return
        asks, alive, eliminated, round, runner = (
            list(look.next_repeats),
            look.alive,
            look.eliminated_in,
            round + 1,
            None,
        )


def _round_items(arms: Sequence[Arm], planned: Sequence[int], asks: Sequence[int]):
    """This round's sweep items (arm ``a`` continues its repeat indexes) and fingerprint → arm."""
    items: list[SweepItem] = []
    where: dict[str, int] = {}
    for arm, done, n in zip(arms, planned, asks):
        for repeat in range(done, done + n):
            item = SweepItem(request=arm.request, repeat=repeat, index=len(items))
            items.append(item)
            where[item.fingerprint] = arm.index
    return items, where


def _collect(metric: Metric, run: RunResult, where: Mapping[str, int], values: list[list[float]]) -> None:
    """Add each new ok clip's metric to its arm (one value per fingerprint, in repeat order)."""
    frame = run.frame()
    if not len(frame):
        return
    frame = frame[(frame["status"] == "ok").fillna(False).astype(bool)]
    frame = frame.drop_duplicates(subset="fingerprint").sort_values("repeat", kind="stable")
    for fingerprint, value in zip(frame["fingerprint"], metric_values(metric, frame)):
        arm = where.get(str(fingerprint))
        if arm is not None and math.isfinite(value):
            values[arm].append(float(value))


RACE_OPTIONS = (
    "metric",
    "higher_is_better",
    "confidence",
    "min_difference",
    "initial_repeats",
    "max_repeats",
    "max_rounds",
)

__all__ = [
    "RACE_OPTIONS",
    "Arm",
    "RaceResult",
    "arms_of",
    "check_metric",
    "metric_name",
    "plan_race",
    "race_async",
    "race_id_of",
]
