"""What a sweep will cost and how long it may take, before anything is spent: :class:`Estimate`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kling_lab.models import ModelRequest

# Conservative wall-clock guesses for one clip on fal (queue + inference) by clip length,
# used for the worst-case time of an estimate; pass your own to ``estimate``.
WORST_CASE_SECONDS = {"5": 480.0, "10": 720.0}


def worst_case_for(seconds: int, table: Mapping[str, float]) -> float:
    """The table's guess for a clip of ``seconds`` (48 s per second of video beyond 5 s otherwise)."""
    return table.get(str(seconds), 480.0 + 48.0 * max(0, seconds - 5))


@dataclass(frozen=True)
class ModelEstimate:
    """One model's share of an estimate (``usd`` is None when its price is not known)."""

    requests: int
    usd: float | None
    price: str  # the price rule, in words


@dataclass(frozen=True)
class Estimate:
    """What a sweep will cost before anything is spent, overall and per model."""

    requests: int
    total_usd: float
    worst_case_s: float
    concurrency: int
    by_duration: dict[str, int] = field(default_factory=dict)
    by_model: dict[str, ModelEstimate] = field(default_factory=dict)

    @property
    def unpriced(self) -> dict[str, int]:
        """Requests per model whose price is not known (give ``prices:`` in the sweep)."""
        return {alias: m.requests for alias, m in self.by_model.items() if m.usd is None}

    def __repr__(self) -> str:
        return f"<Estimate: {self}>"

    def _repr_html_(self) -> str:
        from kling_lab.util.html import card_html

        durations = ", ".join(f"{n} × {d} s" for d, n in sorted(self.by_duration.items(), key=lambda kv: int(kv[0])))
        rows = [
            ("requests", f"{self.requests} ({durations})" if durations else self.requests),
            ("cost if all succeed", f"${self.total_usd:.2f} at fal prices"),
            ("worst-case time", f"≈ {self.worst_case_s / 60:.0f} min at concurrency {self.concurrency}"),
        ]
        if len(self.by_model) > 1 or self.unpriced:
            rows += [
                (alias, f"{m.requests} requests, " + ("price unknown" if m.usd is None else f"${m.usd:.2f}"))
                for alias, m in self.by_model.items()
            ]
        return card_html("Estimate", rows, verdict=str(self).splitlines()[0])

    def __str__(self) -> str:
        mins = self.worst_case_s / 60
        parts = ", ".join(f"{n} × {d} s" for d, n in sorted(self.by_duration.items(), key=lambda kv: int(kv[0])))
        missing = sum(self.unpriced.values())
        money = f"${self.total_usd:.2f} if all succeed"
        if missing:
            money += f" (+ {missing} requests without a price)"
        head = f"{self.requests} requests ({parts}), {money}, worst case ≈ {mins:.0f} min at concurrency {self.concurrency}"
        if len(self.by_model) <= 1 and not missing:
            return head
        lines = [head]
        width = max(len(alias) for alias in self.by_model)
        for alias, part in self.by_model.items():
            usd = "price unknown: give prices." + alias if part.usd is None else f"${part.usd:.2f}"
            lines.append(f"  {alias:<{width}}  {part.requests:>4} requests  {usd}  ({part.price})")
        return "\n".join(lines)


def estimate_requests(
    requests: Sequence[ModelRequest], concurrency: int = 4, seconds_per_request: Mapping[str, float] | None = None
) -> Estimate:
    """Request count, total USD if all succeed (per model too), and worst-case wall time at ``concurrency``."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    per = dict(WORST_CASE_SECONDS, **(seconds_per_request or {}))
    by_duration: dict[str, int] = {}
    counts: dict[str, int] = {}
    money: dict[str, float | None] = {}
    rules: dict[str, str] = {}
    for request in requests:
        seconds = str(request.duration_s)
        by_duration[seconds] = by_duration.get(seconds, 0) + 1
        alias = request.alias
        counts[alias] = counts.get(alias, 0) + 1
        cost = request.cost_usd()
        so_far = money.get(alias, 0.0)
        money[alias] = None if cost is None or (alias in money and so_far is None) else (so_far or 0.0) + cost
        rules.setdefault(alias, request.rule.describe())
    by_model = {
        alias: ModelEstimate(
            counts[alias], None if money[alias] is None else round(money[alias] or 0.0, 2), rules[alias]
        )
        for alias in counts
    }
    slowest = max((worst_case_for(int(d), per) for d in by_duration), default=0.0)
    worst = math.ceil(len(requests) / concurrency) * slowest
    total = round(sum(request.cost_usd() or 0.0 for request in requests), 2)
    return Estimate(len(requests), total, worst, concurrency, by_duration, by_model)


__all__ = ["WORST_CASE_SECONDS", "Estimate", "ModelEstimate", "estimate_requests", "worst_case_for"]
