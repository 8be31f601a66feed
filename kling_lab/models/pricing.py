"""Price rules: what fal bills for one request, computed from its canonical arguments (exact decimals).

Each rule is a small frozen object with ``usd(arguments)`` (``None`` when the price is not known)
and ``describe()`` (one line for ``kling-lab models`` and estimates). ``unit_prices()`` gives the
rule in the units fal's pricing API speaks (``second``, ``video``, ...), for ``--check-prices``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

Arguments = Mapping[str, Any]


def usd(value: str | float | Decimal) -> Decimal:
    """A dollar amount as an exact Decimal (floats go through their shortest repr)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def seconds_of(arguments: Arguments, default_s: int) -> int:
    """The clip length an input asks for: ``"5"``, ``"8s"``, ``5`` → seconds (``default_s`` when absent)."""
    value = arguments.get("duration")
    if value is None:
        return default_s
    return int(str(value).rstrip("s"))


@runtime_checkable
class PriceRule(Protocol):
    """What fal charges for one successful request with ``arguments``."""

    def usd(self, arguments: Arguments, default_s: int = 5) -> Decimal | None: ...

    def describe(self) -> str: ...

    def unit_prices(self) -> dict[str, Decimal]: ...


@dataclass(frozen=True)
class PerClip:
    """``base_usd`` for the first ``base_s`` seconds, ``extra_usd_per_s`` for every second after (Kling)."""

    base_usd: Decimal
    base_s: int = 5
    extra_usd_per_s: Decimal = Decimal(0)

    def usd(self, arguments: Arguments, default_s: int = 5) -> Decimal | None:
        extra = max(0, seconds_of(arguments, default_s) - self.base_s)
        return self.base_usd + self.extra_usd_per_s * extra

    def describe(self) -> str:
        more = f", +${self.extra_usd_per_s} per extra second" if self.extra_usd_per_s else ""
        return f"${self.base_usd} per {self.base_s} s clip{more}"

    def unit_prices(self) -> dict[str, Decimal]:
        prices = {"video": self.base_usd}
        per_second = self.base_usd / self.base_s
        if not self.extra_usd_per_s or per_second == self.extra_usd_per_s:
            prices["second"] = per_second
        return prices


@dataclass(frozen=True)
class PerSecond:
    """``usd_per_s`` per second of video; ``by_value`` switches the rate on one input (audio, resolution)."""

    usd_per_s: Decimal
    switch: str | None = None  # the input that changes the rate, e.g. "generate_audio" or "resolution"
    by_value: Mapping[Any, Decimal] = field(default_factory=dict)

    def rate(self, arguments: Arguments) -> Decimal:
        if self.switch is not None and arguments.get(self.switch) in self.by_value:
            return self.by_value[arguments[self.switch]]
        return self.usd_per_s

    def usd(self, arguments: Arguments, default_s: int = 5) -> Decimal | None:
        return self.rate(arguments) * seconds_of(arguments, default_s)

    def describe(self) -> str:
        text = f"${self.usd_per_s} per second"
        if self.switch is not None:
            others = ", ".join(f"${rate} with {self.switch}={_show(value)}" for value, rate in self.by_value.items())
            text += f" ({others})"
        return text

    def unit_prices(self) -> dict[str, Decimal]:
        return {"second": self.usd_per_s}


@dataclass(frozen=True)
class ByDuration:
    """A flat price per clip length, e.g. {6: $0.28, 10: $0.56} (Hailuo)."""

    usd_by_s: Mapping[int, Decimal]

    def usd(self, arguments: Arguments, default_s: int = 5) -> Decimal | None:
        return self.usd_by_s.get(seconds_of(arguments, default_s))

    def describe(self) -> str:
        return ", ".join(f"${price} per {s} s clip" for s, price in self.usd_by_s.items())

    def unit_prices(self) -> dict[str, Decimal]:
        first = min(self.usd_by_s)
        return {"video": self.usd_by_s[first]}


@dataclass(frozen=True)
class PerVideoTokens:
    """Seedance: ``usd_per_million`` per million tokens, tokens = width × height × fps × seconds / 1024."""

    usd_per_million: Decimal
    fps: int
    sizes: Mapping[tuple[str, str], tuple[int, int]]  # (resolution, aspect_ratio) -> (width, height)
    default_resolution: str
    default_aspect: str = "16:9"

    def tokens(self, arguments: Arguments, default_s: int = 5) -> int:
        resolution = str(arguments.get("resolution", self.default_resolution))
        aspect = str(arguments.get("aspect_ratio", self.default_aspect))
        width, height = self.sizes.get((resolution, aspect), self.sizes[(resolution, self.default_aspect)])
        return width * height * self.fps * seconds_of(arguments, default_s) // 1024

    def usd(self, arguments: Arguments, default_s: int = 5) -> Decimal | None:
        return (Decimal(self.tokens(arguments, default_s)) * self.usd_per_million / 1_000_000).quantize(
            Decimal("0.0001")
        )

    def describe(self) -> str:
        return f"${self.usd_per_million} per million video tokens (width × height × {self.fps} fps × seconds / 1024)"

    def unit_prices(self) -> dict[str, Decimal]:
        return {"1m tokens": self.usd_per_million}


@dataclass(frozen=True)
class UserPrice:
    """No confirmed price: the sweep (``prices:``) or ``register_model`` must give one."""

    reason: str = "price not confirmed on fal's model page"

    def usd(self, arguments: Arguments, default_s: int = 5) -> Decimal | None:
        return None

    def describe(self) -> str:
        return f"unknown ({self.reason}); give prices.<alias> in the sweep"

    def unit_prices(self) -> dict[str, Decimal]:
        return {}


def user_price(spec: Mapping[str, Any]) -> PriceRule:
    """A rule from a sweep's ``prices.<alias>`` entry: ``{usd_per_clip: 0.5}`` or ``{usd_per_second: 0.1}``."""
    keys = set(spec)
    if keys == {"usd_per_clip"}:
        return Flat(usd(spec["usd_per_clip"]))
    if keys == {"usd_per_second"}:
        return PerSecond(usd(spec["usd_per_second"]))
    raise ValueError(f"give exactly one of usd_per_clip, usd_per_second; got {sorted(keys) or 'nothing'}")


@dataclass(frozen=True)
class Flat:
    """One price per request, whatever its inputs (a user's own price)."""

    usd_per_clip: Decimal

    def usd(self, arguments: Arguments, default_s: int = 5) -> Decimal | None:
        return self.usd_per_clip

    def describe(self) -> str:
        return f"${self.usd_per_clip} per clip"

    def unit_prices(self) -> dict[str, Decimal]:
        return {"video": self.usd_per_clip}


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


__all__ = [
    "ByDuration",
    "Flat",
    "PerClip",
    "PerSecond",
    "PerVideoTokens",
    "PriceRule",
    "UserPrice",
    "seconds_of",
    "usd",
    "user_price",
]
