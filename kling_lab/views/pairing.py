"""Which runs a blind A/B vote puts side by side.

Two runs form a pair when they come from different arms (values of ``by``), share the prompt,
and otherwise match as closely as the data allows: for each prompt and pair of arms, only the
run pairs with the fewest differing parameters (``repeat`` aside) are kept, so exact matches
are used whenever they exist. Only ``ok`` runs whose video file is present take part. The order
of pairs and which side each run is shown on are shuffled by a seeded RNG.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kling_lab.store.schema import PARAM_COLUMNS
from kling_lab.views import values


@dataclass(frozen=True)
class Pair:
    """Two runs' records, already in display order."""

    left: Mapping[str, Any]
    right: Mapping[str, Any]

    @property
    def run_ids(self) -> frozenset[str]:
        return frozenset((self.left["run_id"], self.right["run_id"]))


def _mismatch(a: Mapping[str, Any], b: Mapping[str, Any], columns: Sequence[str]) -> int:
    return sum(values.key(a.get(c)) != values.key(b.get(c)) for c in columns)


def make_pairs(records: Sequence[Mapping[str, Any]], by: str, *, seed: int | None = None) -> list[Pair]:
    """The shuffled, side-randomised pairs of ``records`` (usable runs only) across arms of ``by``."""
    others = [c for c in PARAM_COLUMNS if c not in (by, "prompt", "repeat")]
    by_prompt: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for r in records:
        by_prompt.setdefault(values.key(r.get("prompt")), {}).setdefault(values.key(r.get(by)), []).append(r)
    pairs: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
    for arms in by_prompt.values():
        for arm_a, arm_b in itertools.combinations(sorted(arms), 2):
            candidates = list(itertools.product(arms[arm_a], arms[arm_b]))
            best = min(_mismatch(a, b, others) for a, b in candidates)
            pairs += [(a, b) for a, b in candidates if _mismatch(a, b, others) == best]
    rng = random.Random(seed)
    rng.shuffle(pairs)
    return [Pair(a, b) if rng.random() < 0.5 else Pair(b, a) for a, b in pairs]
