"""One wording for money, used by the CLI summary, the widgets, the report and the tables.

Emulator rows carry what fal *would* charge (``cost_usd`` follows fal's price rule) but nothing
was paid for them, so they are never called "spent":

- only emulator rows: ``$16.80 at fal prices (emulator: nothing was spent)``
- only real rows: ``spent $16.80``
- both: ``spent $2.80 (+ $2.80 at fal prices on the emulator: not spent)``
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

EMULATOR = "emulator"


def usd(amount: float) -> str:
    """``$16.80``."""
    return f"${amount:.2f}"


def money_text(amount: float, backend: str) -> str:
    """How ``amount`` dollars of one backend's runs are worded."""
    if backend == EMULATOR:
        return f"{usd(amount)} at fal prices (emulator: nothing was spent)"
    return f"spent {usd(amount)}"


def _is_emulator(backend: Any) -> bool:
    return isinstance(backend, str) and backend == EMULATOR  # a missing backend (NA, None) is not


def _amount(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(number) else number


def split_costs(backends: Iterable[Any], costs: Iterable[Any]) -> tuple[float, float]:
    """(real dollars, emulator dollars) of rows given as parallel ``backend`` / ``cost_usd`` values."""
    real = emulated = 0.0
    for backend, cost in zip(backends, costs):
        if _is_emulator(backend):
            emulated += _amount(cost)
        else:
            real += _amount(cost)
    return round(real, 2), round(emulated, 2)


def spent_text(runs: Any) -> str:
    """The money of a runs table (anything with ``backend`` and ``cost_usd`` columns, e.g. ``load_runs``)."""
    if len(runs) == 0:
        return money_text(0.0, "")
    backends = runs["backend"] if "backend" in runs else [""] * len(runs)
    real, emulated = split_costs(backends, runs["cost_usd"])
    only_emulator = all(_is_emulator(b) for b in backends)
    if only_emulator:
        return money_text(emulated, EMULATOR)
    text = money_text(real, "")
    if emulated:
        text += f" (+ {usd(emulated)} at fal prices on the emulator: not spent)"
    return text


__all__ = ["money_text", "spent_text", "split_costs", "usd"]
