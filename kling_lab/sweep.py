"""Sweeps: an ordered list of Kling requests built from a grid, a zip, an explicit list and repeats.

Pure apart from :meth:`Sweep.from_yaml`, which only reads the file. A sweep file looks like::

    name: quickstart
    prompt: "A red fox trotting through fresh snow at dawn"
    duration: "5"
    grid:                       # cartesian product
      cfg_scale: [0.25, 0.5, 0.75]
      aspect_ratio: ["16:9", "9:16"]
    zip:                        # lists of equal length, taken element-wise
      prompt: [...]
      negative_prompt: [...]
    requests:                   # explicit list of partial inputs
      - {cfg_scale: 0.1}
    repeats: 2
    tags: {owner: ana}

Fixed inputs (top-level ``prompt``, ``duration``, ...) apply to every request; each
explicit request is crossed with the grid and with the zip rows; each result is repeated.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kling_lab.errors import InvalidRequest, SweepFileError
from kling_lab.request import INPUT_FIELDS, KlingRequest
from kling_lab.sweep_file import MAX_REQUESTS, SweepFile, check_request_count, planned_requests
from kling_lab.util.safe_yaml import YamlLimitError, load_yaml, yaml_error_line
from kling_lab.util.text import control_character

# Conservative wall-clock guesses for one Kling 2.0 Master clip on fal (queue + inference),
# used for the worst-case time of an estimate; pass your own to ``estimate``.
WORST_CASE_SECONDS = {"5": 480.0, "10": 720.0}


@dataclass(frozen=True)
class SweepItem:
    """One planned request of a sweep: the request, its repeat index and its position."""

    request: KlingRequest
    repeat: int = 0
    index: int = 0

    @property
    def fingerprint(self) -> str:
        return self.request.fingerprint(self.repeat)

    @property
    def cost_usd(self) -> float:
        return self.request.cost_usd()


@dataclass(frozen=True)
class Estimate:
    """What a sweep will cost before anything is spent."""

    requests: int
    total_usd: float
    worst_case_s: float
    concurrency: int
    by_duration: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        mins = self.worst_case_s / 60
        parts = ", ".join(f"{n} × {d} s" for d, n in sorted(self.by_duration.items(), key=lambda kv: int(kv[0])))
        return (
            f"{self.requests} requests ({parts}), ${self.total_usd:.2f} if all succeed, "
            f"worst case ≈ {mins:.0f} min at concurrency {self.concurrency}"
        )


@dataclass(frozen=True)
class Sweep:
    """An ordered, validated list of requests with a name and optional tags."""

    name: str
    items: tuple[SweepItem, ...]
    tags: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    # -- constructors ----------------------------------------------------------------------
    @classmethod
    def grid(
        cls,
        name: str = "sweep",
        *,
        repeats: int = 1,
        tags: Mapping[str, Any] | None = None,
        max_requests: int | None = MAX_REQUESTS,
        **inputs: Any,
    ) -> Sweep:
        """Cartesian product: each input may be a single value or a list of values."""
        fixed = {k: v for k, v in inputs.items() if not isinstance(v, (list, tuple))}
        axes = {k: list(v) for k, v in inputs.items() if isinstance(v, (list, tuple))}
        return cls.build(name, fixed=fixed, grid=axes, repeats=repeats, tags=tags, max_requests=max_requests)

    @classmethod
    def zip(
        cls,
        name: str = "sweep",
        *,
        repeats: int = 1,
        tags: Mapping[str, Any] | None = None,
        max_requests: int | None = MAX_REQUESTS,
        **inputs: Any,
    ) -> Sweep:
        """Element-wise: list inputs must share one length; single values apply to every row."""
        fixed = {k: v for k, v in inputs.items() if not isinstance(v, (list, tuple))}
        columns = {k: list(v) for k, v in inputs.items() if isinstance(v, (list, tuple))}
        return cls.build(name, fixed=fixed, zip=columns, repeats=repeats, tags=tags, max_requests=max_requests)

    @classmethod
    def from_list(
        cls,
        requests: Iterable[Mapping[str, Any] | KlingRequest],
        name: str = "sweep",
        *,
        repeats: int = 1,
        tags: Mapping[str, Any] | None = None,
        max_requests: int | None = MAX_REQUESTS,
    ) -> Sweep:
        """An explicit list of requests (mappings or KlingRequest objects)."""
        explicit = [r.arguments() if isinstance(r, KlingRequest) else dict(r) for r in requests]
        return cls.build(name, requests=explicit, repeats=repeats, tags=tags, max_requests=max_requests)

    @classmethod
    def build(
        cls,
        name: str,
        *,
        fixed: Mapping[str, Any] | None = None,
        grid: Mapping[str, Sequence[Any]] | None = None,
        zip: Mapping[str, Sequence[Any]] | None = None,
        requests: Sequence[Mapping[str, Any]] | None = None,
        repeats: int = 1,
        tags: Mapping[str, Any] | None = None,
        description: str = "",
        max_requests: int | None = MAX_REQUESTS,
    ) -> Sweep:
        """The general form behind every constructor (see the module docstring).

        A sweep that would expand to more than ``max_requests`` requests (None: no limit) is refused
        before any request is built."""
        if not isinstance(name, str) or not name.strip():
            raise SweepFileError("name: must be a non-empty string")
        control = control_character(name)
        if control is not None:
            raise SweepFileError(f"name: contains the control character {control[0]!r}")
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise SweepFileError(f"repeats: must be a positive integer; got {repeats!r}")
        for label, mapping in (("grid", grid), ("zip", zip), ("", fixed)):
            for key in mapping or {}:
                if key not in INPUT_FIELDS:
                    where = f"{label}." if label else ""
                    raise SweepFileError(f"{where}{key}: unknown input; allowed inputs: {', '.join(INPUT_FIELDS)}")
        if requests is not None and not requests:
            raise SweepFileError("requests: must list at least one request (or leave the key out)")
        _check_axes("grid", grid)
        _check_axes("zip", zip)
        check_request_count(*planned_requests(grid, zip, requests, repeats), max_requests)
        grid_rows = _product(grid or {})
        zip_rows = _zip_rows(zip or {})
        explicit = [dict(r) for r in (requests or [{}])]

        items: list[SweepItem] = []
        for base in explicit:
            for g in grid_rows:
                for z in zip_rows:
                    merged = {**(fixed or {}), **base, **g, **z}
                    request = KlingRequest.parse(merged)
                    for r in range(repeats):
                        items.append(SweepItem(request=request, repeat=r, index=len(items)))
        return cls(name=name, items=tuple(items), tags=dict(tags or {}), description=description)

    @classmethod
    def from_yaml(cls, path: str | Path, *, max_requests: int | None = MAX_REQUESTS) -> Sweep:
        """Load a sweep file; raise :class:`SweepFileError` / :class:`InvalidRequest` naming the problem.

        The file is read with :func:`kling_lab.util.safe_yaml.load_yaml` (no duplicate keys, bounded
        nesting and aliases) and its request count is checked against ``max_requests`` first."""
        path = Path(path)
        if not path.is_file():
            raise SweepFileError(f"{path}: no such sweep file")
        try:
            data = load_yaml(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise SweepFileError(f"{path}: not valid YAML ({yaml_error_line(exc)})") from None
        except YamlLimitError as exc:
            raise SweepFileError(f"{path}: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SweepFileError(f"{path}: cannot read the sweep file ({exc})") from None
        try:
            return cls.from_dict(data, default_name=path.stem, max_requests=max_requests)
        except InvalidRequest as exc:
            raise InvalidRequest(f"{path}: {exc}", field=exc.field) from None
        except SweepFileError as exc:
            raise SweepFileError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Any, default_name: str = "sweep", *, max_requests: int | None = MAX_REQUESTS) -> Sweep:
        """Build from the mapping a sweep file holds (validated by :class:`~kling_lab.sweep_file.SweepFile`)."""
        spec = SweepFile.parse(data)
        return cls.build(
            spec.name or default_name,
            fixed=spec.fixed_inputs(),
            grid=spec.grid,
            zip=spec.zip,
            requests=spec.requests,
            repeats=spec.repeats,
            tags=spec.tags,
            description=spec.description,
            max_requests=max_requests,
        )

    # -- facts -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    @property
    def sweep_id(self) -> str:
        """Stable id: name + the ordered fingerprints (same definition → same id)."""
        h = hashlib.sha256(self.name.encode())
        for item in self.items:
            h.update(item.fingerprint.encode())
        return f"{self.name}-{h.hexdigest()[:10]}"

    def total_usd(self) -> float:
        return round(sum(item.cost_usd for item in self.items), 2)

    def estimate(self, concurrency: int = 4, seconds_per_request: Mapping[str, float] | None = None) -> Estimate:
        """Request count, total USD if all succeed, and worst-case wall time at ``concurrency``."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        per = dict(WORST_CASE_SECONDS, **(seconds_per_request or {}))
        by_duration: dict[str, int] = {}
        for item in self.items:
            by_duration[item.request.duration] = by_duration.get(item.request.duration, 0) + 1
        slowest = max((per[d] for d in by_duration), default=0.0)
        worst = math.ceil(len(self.items) / concurrency) * slowest
        return Estimate(len(self.items), self.total_usd(), worst, concurrency, by_duration)

    def to_frame(self):
        """The planned requests as a pandas DataFrame (one row per item)."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "index": i.index,
                    "repeat": i.repeat,
                    "fingerprint": i.fingerprint,
                    "cost_usd": i.cost_usd,
                    **i.request.arguments(),
                }
                for i in self.items
            ]
        )


def _check_axes(label: str, axes: Mapping[str, Sequence[Any]] | None) -> None:
    for key, values in (axes or {}).items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise SweepFileError(f"{label}.{key}: must be a non-empty list of values")


def _product(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]


def _zip_rows(columns: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    if not columns:
        return [{}]
    lengths = {key: len(values) for key, values in columns.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise SweepFileError(f"zip: lists must have the same length; got {desc}")
    keys = list(columns)
    return [dict(zip(keys, row)) for row in zip(*(columns[k] for k in keys))]


__all__ = ["MAX_REQUESTS", "WORST_CASE_SECONDS", "Estimate", "Sweep", "SweepItem"]
