"""The decisions of a race (successive elimination), as a pure function of the values seen so far.

A race over ``K`` arms runs in rounds. Round 1 gives every arm ``initial_repeats`` clips (default: the
fewest with which two arms can be separated at all: 4 at confidence 0.95). After each
round it *looks* (:func:`decide`): per-arm confidence bounds (:mod:`kling_lab.stats.bounds`, valid under
repeated looks by a union bound over looks and arms); an arm whose upper bound falls below the leader's
lower bound is eliminated for good (once the two arms have enough clips for the exact permutation
test of :func:`kling_lab.effect` to be able to agree: see :func:`permutation_can_reject`). Every arm still in contention then goes to
``max(n + initial_repeats, ⌈1.5 n⌉)`` clips (4 → 8 → 12 → 18 → 27 …: few rounds, since each round on fal
takes minutes), never past the *cap*. The race stops when

- one arm is left (``separated``);
- ``min_difference`` is given and every arm left is within it of the leader (``within_difference``);
- every arm left has ``cap`` clips (``cap``): the leader is picked, as a fixed grid would pick it;
- ``max_rounds`` rounds were run (``max_rounds``), or no arm gave a value (``unmeasured``).
  The caller adds ``budget`` when the next round would cost more than it may spend.

**The cap, and what ``confidence`` promises.** With ``min_difference`` (the smallest difference you care
about) the cap is the repeats per arm with which the leader is the best with probability ≥ 1 − δ/2
(δ = 1 − confidence) when the best leads each of the ``m`` arms left by at least ``min_difference``:
``⌈2 (z σ̂ / min_difference)²⌉`` with ``z = Φ⁻¹(1 − δ / (2 (m − 1)))`` (a Bonferroni bound over the
``m − 1`` rivals; σ̂ the SD pooled over the arms left, or over all arms while those have fewer than
:data:`~kling_lab.stats.bounds.MIN_POOL_DF` degrees of freedom). The other half of δ goes to the eliminations, so a race
that ends at the cap picks the best arm with probability ≥ confidence whenever the best arm leads every
other arm by ``min_difference`` or more (normal noise with a common SD, σ̂ taken as σ). ``max_repeats``
sets the cap instead (the pick is then as good as a fixed grid of that many repeats). Without either,
there is no cap, and all of δ goes to the eliminations: the race stops when one arm is left (the best with
probability ≥ confidence) or at ``max_rounds`` (the leader, with the separation it reached).

Decisions depend only on the values and on how many clips each arm was *planned* (``planned``), so a
race replayed on the same clips (a killed race resumed from the cache) decides the same way and asks
for the same repeat indexes. The benchmark (``bench/bench_adaptive.py``) simulates races with this
same function.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from kling_lab.errors import InvalidInput
from kling_lab.stats.bounds import MIN_POOL_DF, ArmBounds, arm_bounds, pooled_sd, separation_confidence
from kling_lab.stats.power import repeats_to_pick

STOPS = {
    "separated": "one arm left: every other arm was ruled out",
    "within_difference": "every arm left is within min_difference of the winner",
    "cap": "every arm left has the clips it needs for the pick",
    "max_rounds": "the round limit was reached",
    "budget": "the next round would go over the budget",
    "unmeasured": "no arm gave a value",
}
GROWTH = 1.5


def default_initial_repeats(confidence: float) -> int:
    """The fewest clips per arm with which two arms can be separated at all (see
    :func:`permutation_can_reject`): 4 at confidence 0.95, 5 at 0.99."""
    n = 2
    while not permutation_can_reject(n, n, 1 - confidence):
        n += 1
    return n


@dataclass(frozen=True)
class RaceRule:
    """A race's settings (validated: bad values raise :class:`InvalidInput` with one line)."""

    higher_is_better: bool
    confidence: float = 0.95
    initial_repeats: int = 0  # 0: the default, see :func:`default_initial_repeats`
    max_repeats: int | None = None
    min_difference: float | None = None
    max_rounds: int = 10

    def __post_init__(self) -> None:
        if not isinstance(self.higher_is_better, bool):
            raise InvalidInput(
                "higher_is_better: say which way the metric is better: True (e.g. qc_motion for lively clips) "
                f"or False (e.g. qc_flicker); got {self.higher_is_better!r}"
            )
        c = self.confidence
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0.5 < c < 1:
            raise InvalidInput(f"confidence must be a number between 0.5 and 1 (exclusive), e.g. 0.95; got {c!r}")
        if self.initial_repeats == 0 and not isinstance(self.initial_repeats, bool):
            object.__setattr__(self, "initial_repeats", default_initial_repeats(c))
        for name, low in (("initial_repeats", 2), ("max_repeats", 2), ("max_rounds", 1)):
            value = getattr(self, name)
            if value is None and name == "max_repeats":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidInput(f"{name} must be an integer >= {low}; got {value!r}")
        if self.max_repeats is not None and self.max_repeats < self.initial_repeats:
            raise InvalidInput(
                f"max_repeats ({self.max_repeats}) is smaller than initial_repeats ({self.initial_repeats})"
            )
        d = self.min_difference
        if d is not None and (isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or d <= 0):
            raise InvalidInput(f"min_difference must be a number > 0 in the metric's units; got {d!r}")

    @property
    def sign(self) -> float:
        return 1.0 if self.higher_is_better else -1.0

    @property
    def capped(self) -> bool:
        """True when the race may end by picking among arms it has not separated."""
        return self.max_repeats is not None or self.min_difference is not None

    @property
    def elimination_confidence(self) -> float:
        """The confidence the eliminations get: all of it without a cap, half of δ with one."""
        return 1 - (1 - self.confidence) / 2 if self.capped else self.confidence

    def check_arms(self, n_arms: int) -> None:
        if n_arms < 2:
            raise InvalidInput(
                f"a race needs at least two arms (distinct requests); this sweep has {n_arms}: "
                "run it as a plain sweep, or add settings to compare"
            )

    def first_round(self, n_arms: int) -> tuple[int, ...]:
        """Clips per arm in round 1."""
        self.check_arms(n_arms)
        return (self.initial_repeats,) * n_arms

    def cap(self, sd: float, df: int, contenders: int) -> int | None:
        """Clips per arm at which the race picks (see the module docstring)."""
        if self.max_repeats is not None:
            return self.max_repeats
        if self.min_difference is None or df < 1 or not math.isfinite(sd):
            return None
        per_rival = (1 - self.confidence) / 2 / max(contenders - 1, 1)
        return max(self.initial_repeats, repeats_to_pick(sd, self.min_difference, 1 - per_rival))

    def next_total(self, n: int, cap: int | None) -> int:
        """Clips an arm in contention has after the next round."""
        target = max(n + self.initial_repeats, math.ceil(GROWTH * n))
        return target if cap is None else max(n, min(cap, target))


@dataclass(frozen=True)
class Look:
    """What the race knows after a round, and what it does next."""

    round: int
    bounds: tuple[ArmBounds, ...]  # in the metric's own units (lower ≤ mean ≤ upper)
    alive: tuple[bool, ...]
    eliminated_in: tuple[int | None, ...]  # the round each arm was ruled out in (None: still in)
    leader: int
    cap: int | None
    stop: str | None  # a key of STOPS, or None: run the next round
    next_repeats: tuple[int, ...]  # clips to add per arm in the next round
    separation: float  # highest confidence at which the leader is separated from every arm left (nan: not stopped)
    sd: float  # pooled repeat-to-repeat SD
    df: int

    @property
    def contenders(self) -> list[int]:
        return [i for i, a in enumerate(self.alive) if a]


def _display(b: ArmBounds, sign: float) -> ArmBounds:
    """Bounds computed on sign·value, back in the metric's units."""
    return b if sign > 0 else ArmBounds(b.n, -b.mean, -b.upper, -b.lower)


def _pool(values: Sequence[Sequence[float]], arms: Sequence[int]) -> list[int] | None:
    """``arms`` when their clips give the SD at least :data:`MIN_POOL_DF` degrees of freedom, else None (all)."""
    return list(arms) if pooled_sd([values[i] for i in arms])[1] >= MIN_POOL_DF else None


def _best(bounds: Sequence[ArmBounds], arms: Iterable[int]) -> int:
    """The arm with the highest (oriented) mean; the first on ties."""
    return max(arms, key=lambda i: (bounds[i].mean if bounds[i].n else -math.inf, -i))


def permutation_can_reject(n_a: int, n_b: int, alpha: float) -> bool:
    """True when an exact permutation test of two arms with ``n_a`` and ``n_b`` clips can reach ``p ≤ alpha``.

    Its smallest p is ``1 / C(n_a + n_b, n_a)`` (twice that for equal sizes, whose F is symmetric):
    2 clips against 2 can never go below 1/3. The race separates no two arms on fewer clips than that,
    so it never claims what :func:`kling_lab.effect` on the same clips could not (2 + 2 clips: no;
    4 + 4: p ≥ 0.029, yes)."""
    twins = 2 if n_a == n_b else 1
    return twins / math.comb(n_a + n_b, n_a) <= alpha + 1e-12


def decide(
    rule: RaceRule,
    values: Sequence[Sequence[float]],
    planned: Sequence[int],
    alive: Sequence[bool],
    round: int,
    eliminated_in: Sequence[int | None] | None = None,
) -> Look:
    """The look after ``round`` (1-based): who is out, whether to stop, and the next round's clips.

    ``values``: each arm's metric values so far (ok clips only); ``planned``: clips asked for per arm
    (ok or not); ``alive``: arms still in contention before this look."""
    k = len(values)
    rule.check_arms(k)
    oriented = [[rule.sign * float(v) for v in arm] for arm in values]
    confidence = rule.elimination_confidence
    pool = _pool(oriented, [i for i in range(k) if alive[i]])
    bounds = arm_bounds(oriented, confidence, round, pool)
    out: list[int | None] = list(eliminated_in) if eliminated_in is not None else [None] * k
    live = list(alive)
    for i in range(k):  # an arm none of whose planned clips gave a value cannot be raced
        if live[i] and planned[i] >= rule.initial_repeats and bounds[i].n == 0:
            live[i], out[i] = False, round

    def look(leader: int, stop: str | None, cap: int | None, separation: float, nxt: Sequence[int]) -> Look:
        shown = tuple(_display(b, rule.sign) for b in bounds)
        return Look(round, shown, tuple(live), tuple(out), leader, cap, stop, tuple(nxt), separation, sd, df)

    measured = [i for i in range(k) if live[i]]
    sd, df = pooled_sd(oriented if pool is None else [oriented[i] for i in pool])
    if len(measured) < 2:
        leader = measured[0] if measured else _best(bounds, range(k))
        return look(leader, "separated" if measured else "unmeasured", None, confidence, [0] * k)
    leader = _best(bounds, measured)
    for i in measured:
        if (
            i != leader
            and bounds[i].upper < bounds[leader].lower
            and permutation_can_reject(bounds[i].n, bounds[leader].n, 1 - rule.confidence)
        ):
            live[i], out[i] = False, round
    left = [i for i in range(k) if live[i]]
    others = [i for i in left if i != leader]
    left_pool = _pool(oriented, left)
    cap = rule.cap(*pooled_sd(oriented if left_pool is None else [oriented[i] for i in left_pool]), len(left))
    stop: str | None = None
    if not others:
        stop = "separated"
    elif rule.min_difference is not None and all(
        bounds[j].upper - bounds[leader].lower <= rule.min_difference for j in others
    ):
        stop = "within_difference"
    elif cap is not None and all(planned[i] >= cap for i in left):
        stop = "cap"
    elif round >= rule.max_rounds:
        stop = "max_rounds"
    nxt = [0] * k
    if stop is None:
        for i in left:
            nxt[i] = rule.next_total(planned[i], cap) - planned[i]
    # how separated the winner is: only worth the bisection when the race ends here
    separation = math.nan if stop is None else separation_confidence(oriented, leader, others, round, confidence, pool)
    return look(leader, stop, cap, separation, nxt)


def simulate(rule: RaceRule, draw: Callable[[int, int], Sequence[float]], n_arms: int) -> tuple[Look, int]:
    """Run a whole race on simulated clips: ``draw(arm, count)`` returns ``count`` new values of ``arm``.

    Returns the last look and the clips used (what the benchmark and the tests measure)."""
    planned = list(rule.first_round(n_arms))
    values: list[list[float]] = [list(draw(i, planned[i])) for i in range(n_arms)]
    alive: Sequence[bool] = [True] * n_arms
    eliminated: Sequence[int | None] = [None] * n_arms
    round = 1
    while True:
        look = decide(rule, values, planned, alive, round, eliminated)
        if look.stop is not None:
            return look, sum(planned)
        for i, extra in enumerate(look.next_repeats):
            if extra:
                values[i].extend(draw(i, extra))
                planned[i] += extra
        alive, eliminated, round = look.alive, look.eliminated_in, round + 1


__all__ = ["GROWTH", "STOPS", "Look", "RaceRule", "decide", "permutation_can_reject", "simulate"]
