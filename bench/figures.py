"""Figures, sections, the printed table and the JSON file."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One reported number; ``target`` is an upper bound unless ``higher_is_better``."""

    key: str
    label: str
    value: float
    unit: str = ""
    target: float | None = None
    higher_is_better: bool = False

    @property
    def passed(self) -> bool | None:
        """True/False against the target; None for a figure without one (context only)."""
        if self.target is None:
            return None
        if not math.isfinite(self.value):
            return False
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "MISS", None: ""}[self.passed]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass
class Section:
    """The figures of one benchmark, with notes saying what was measured and how."""

    name: str
    title: str
    number: int = 0
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def add(
        self,
        key: str,
        label: str,
        value: float,
        unit: str = "",
        target: float | None = None,
        higher_is_better: bool = False,
    ) -> Figure:
        figure = Figure(
            f"{self.name}.{key}", label, float(value), unit, None if target is None else float(target), higher_is_better
        )
        self.figures.append(figure)
        return figure

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "seconds": round(self.seconds, 2),
            "error": self.error,
            "notes": self.notes,
            "figures": {f.key.split(".", 1)[1]: f.to_json() for f in self.figures},
        }


COUNT_UNITS = ("", "files", "rows", "requests")


def _number(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return str(value)
    if unit in COUNT_UNITS and value.is_integer():
        text = f"{value:,.0f}"
    elif unit == "x":
        text = f"{value:.3f}"
    elif abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}" if abs(value) < 0.01 else f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def _target(figure: Figure) -> str:
    if figure.target is None:
        return ""
    sign = ">=" if figure.higher_is_better else "<="
    return f"{sign} {_number(figure.target, figure.unit)}"


def format_table(sections: list[Section]) -> str:
    """A plain-text table: one block per section, one line per figure."""
    width = max((len(f.label) for s in sections for f in s.figures), default=20)
    lines: list[str] = []
    for section in sections:
        lines.append(f"{section.number}. {section.title}  ({section.seconds:.0f} s)")
        if section.error:
            lines.append(f"   ERROR: {section.error}")
        for f in section.figures:
            lines.append(f"   {f.label:<{width}}  {_number(f.value, f.unit):>14}  {_target(f):>12}  {f.verdict}")
        lines.extend(f"   · {note}" for note in section.notes)
        lines.append("")
    scored = [f for s in sections for f in s.figures if f.passed is not None]
    missed = [f.key for f in scored if not f.passed]
    errors = [s.name for s in sections if s.error]
    lines.append(
        f"{len(scored) - len(missed)}/{len(scored)} targets PASS"
        + (f"; MISS: {', '.join(missed)}" if missed else "")
        + (f"; ERRORS in: {', '.join(errors)}" if errors else "")
    )
    return "\n".join(lines)


def write_json(path: Path, sections: list[Section], meta: dict[str, Any]) -> None:
    data = {"meta": meta, "sections": {s.name: s.to_json() for s in sections}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, allow_nan=True) + "\n")
