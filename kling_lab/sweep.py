"""Sweeps: an ordered list of model requests built from a grid, a zip, an explicit list and repeats.

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
    models:                     # inputs for one model only (a cross-model sweep's model-specific settings)
      veo-3-fast: {duration: "8s", generate_audio: false}
    prices:                     # your price for a model whose price kling_lab could not confirm
      hailuo-02-standard: {usd_per_clip: 0.27}

Fixed inputs (top-level ``prompt``, ``duration``, ...) apply to every request; each
explicit request is crossed with the grid and with the zip rows; each result is repeated.
``model`` is an input like any other (default ``kling-2.0-master``); an input the chosen model
does not take is an error naming both, unless it is set under ``models.<alias>``, whose inputs
apply to that model's requests only (and win over the shared ones). ``image`` / ``end_image``
(a local file, read once here, or a URL) pick the model's image-to-video endpoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kling_lab.errors import InvalidInput, InvalidRequest, SweepFileError
from kling_lab.estimate import WORST_CASE_SECONDS, Estimate, ModelEstimate, estimate_requests
from kling_lab.models import DEFAULT_MODEL, END_IMAGE, IMAGE, ModelRequest, all_parameters, get_model
from kling_lab.models.request import parse_request
from kling_lab.request import KlingRequest
from kling_lab.sweep_expand import ImageReader, as_inputs, check_axes, price_rules, product, zip_rows
from kling_lab.sweep_file import MAX_REQUESTS, SweepFile, check_request_count, planned_requests
from kling_lab.util.safe_yaml import YamlLimitError, load_yaml, yaml_error_line
from kling_lab.util.text import control_character


@dataclass(frozen=True)
class SweepItem:
    """One planned request of a sweep: the request, its repeat index and its position."""

    request: ModelRequest
    repeat: int = 0
    index: int = 0

    @property
    def fingerprint(self) -> str:
        return self.request.fingerprint(self.repeat)

    @property
    def cost_usd(self) -> float | None:
        return self.request.cost_usd()

    @property
    def model(self) -> str:
        return self.request.alias


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
        models: Mapping[str, Mapping[str, Any]] | None = None,
        prices: Mapping[str, Mapping[str, float]] | None = None,
        max_requests: int | None = MAX_REQUESTS,
        **inputs: Any,
    ) -> Sweep:
        """Cartesian product: each input (``model`` too) may be a single value or a list of values."""
        fixed = {k: v for k, v in inputs.items() if not isinstance(v, (list, tuple))}
        axes = {k: list(v) for k, v in inputs.items() if isinstance(v, (list, tuple))}
        return cls.build(
            name,
            fixed=fixed,
            grid=axes,
            repeats=repeats,
            tags=tags,
            models=models,
            prices=prices,
            max_requests=max_requests,
        )

    @classmethod
    def zip(
        cls,
        name: str = "sweep",
        *,
        repeats: int = 1,
        tags: Mapping[str, Any] | None = None,
        models: Mapping[str, Mapping[str, Any]] | None = None,
        prices: Mapping[str, Mapping[str, float]] | None = None,
        max_requests: int | None = MAX_REQUESTS,
        **inputs: Any,
    ) -> Sweep:
        """Element-wise: list inputs must share one length; single values apply to every row."""
        fixed = {k: v for k, v in inputs.items() if not isinstance(v, (list, tuple))}
        columns = {k: list(v) for k, v in inputs.items() if isinstance(v, (list, tuple))}
        return cls.build(
            name,
            fixed=fixed,
            zip=columns,
            repeats=repeats,
            tags=tags,
            models=models,
            prices=prices,
            max_requests=max_requests,
        )

    @classmethod
    def from_list(
        cls,
        requests: Iterable[Mapping[str, Any] | KlingRequest | ModelRequest],
        name: str = "sweep",
        *,
        repeats: int = 1,
        tags: Mapping[str, Any] | None = None,
        prices: Mapping[str, Mapping[str, float]] | None = None,
        max_requests: int | None = MAX_REQUESTS,
    ) -> Sweep:
        """An explicit list of requests (mappings, KlingRequest or ModelRequest objects)."""
        explicit: list[dict[str, Any]] = []
        for r in requests:
            if isinstance(r, KlingRequest):
                explicit.append(r.arguments())
            elif isinstance(r, ModelRequest):
                explicit.append(as_inputs(r))
            else:
                explicit.append(dict(r))
        return cls.build(name, requests=explicit, repeats=repeats, tags=tags, prices=prices, max_requests=max_requests)

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
        models: Mapping[str, Mapping[str, Any]] | None = None,
        prices: Mapping[str, Mapping[str, float]] | None = None,
        base_dir: str | Path | None = None,
        max_requests: int | None = MAX_REQUESTS,
    ) -> Sweep:
        """The general form behind every constructor (see the module docstring).

        Local image paths are read once each (relative ones against ``base_dir``, e.g. the
        sweep file's folder): a missing file or not-an-image is an input error here. A sweep that
        would expand to more than ``max_requests`` requests (None: no limit) is refused before any
        request is built."""
        if not isinstance(name, str) or not name.strip():
            raise SweepFileError("name: must be a non-empty string")
        control = control_character(name)
        if control is not None:
            raise SweepFileError(f"name: contains the control character {control[0]!r}")
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise SweepFileError(f"repeats: must be a positive integer; got {repeats!r}")
        known = all_parameters()
        for label, mapping in (("grid", grid), ("zip", zip), ("", fixed)):
            for key in mapping or {}:
                if key not in known:
                    where = f"{label}." if label else ""
                    raise SweepFileError(f"{where}{key}: unknown input; allowed inputs: {', '.join(known)}")
        if requests is not None and not requests:
            raise SweepFileError("requests: must list at least one request (or leave the key out)")
        check_axes("grid", grid)
        check_axes("zip", zip)
        check_request_count(*planned_requests(grid, zip, requests, repeats), max_requests)
        per_model = {get_model(alias).alias: dict(values) for alias, values in (models or {}).items()}
        rules = price_rules(prices or {})
        grid_rows = product(grid or {})
        zipped = zip_rows(zip or {})
        explicit = [dict(r) for r in (requests or [{}])]
        images = ImageReader(Path(base_dir) if base_dir is not None else None)

        items: list[SweepItem] = []
        for base in explicit:
            for g in grid_rows:
                for z in zipped:
                    merged = {**(fixed or {}), **base, **g, **z}
                    model = get_model(merged.pop("model", None) or DEFAULT_MODEL)
                    merged.update(per_model.get(model.alias, {}))
                    found = {key: images.ref(merged.pop(key), key) for key in (IMAGE, END_IMAGE) if key in merged}
                    refs = {key: ref for key, ref in found.items() if ref is not None}
                    request = parse_request(model, merged, images=refs, price_rule=rules.get(model.alias))
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
            return cls.from_dict(data, default_name=path.stem, base_dir=path.parent, max_requests=max_requests)
        except InvalidRequest as exc:
            raise InvalidRequest(f"{path}: {exc}", field=exc.field) from None
        except SweepFileError as exc:
            raise SweepFileError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(
        cls,
        data: Any,
        default_name: str = "sweep",
        base_dir: str | Path | None = None,
        *,
        max_requests: int | None = MAX_REQUESTS,
    ) -> Sweep:
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
            models=spec.models,
            prices=spec.prices,
            base_dir=base_dir,
            max_requests=max_requests,
        )

    # -- facts -----------------------------------------------------------------------------
    def inputs(self) -> dict[str, list[Any]]:
        """Each request input → its distinct values in sweep order (one value: fixed for every item)."""
        seen: dict[str, dict[str, Any]] = {}
        for item in self.items:
            arguments = item.request.arguments()
            if len({i.model for i in self.items}) > 1:
                arguments = {"model": item.model, **arguments}
            for name, value in arguments.items():
                seen.setdefault(name, {}).setdefault(repr(value), value)
        return {name: list(values.values()) for name, values in seen.items()}

    def __repr__(self) -> str:
        return f"<Sweep {self.name!r}: {len(self.items)} requests, ${self.total_usd():.2f} at fal prices>"

    def _repr_html_(self) -> str:
        from kling_lab.util.html import card_html
        from kling_lab.util.text import truncate

        inputs = self.inputs()
        repeats = len({item.repeat for item in self.items})
        varying = [(k, ", ".join(truncate(str(v), 60) for v in vs)) for k, vs in inputs.items() if len(vs) > 1]
        fixed = [(k, truncate(str(vs[0]), 120)) for k, vs in inputs.items() if len(vs) == 1]
        rows: list[tuple[str, Any]] = [*varying, *(("repeats", repeats),) * (repeats > 1), *fixed]
        rows += [("sweep_id", self.sweep_id), *((("tags", dict(self.tags)),) if self.tags else ())]
        what = " × ".join(f"{len(inputs[k])} {k}" for k, _ in varying) or "one request"
        verdict = (
            f"{len(self.items)} requests ({what}{f' × {repeats} repeats' if repeats > 1 else ''}), "
            f"${self.total_usd():.2f} if all succeed; nothing runs until kl.run(sweep)."
        )
        return card_html(f"Sweep {self.name}", rows, verdict=verdict, note=self.description or None)

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

    @property
    def models(self) -> list[str]:
        """The model aliases of this sweep, in order of first use."""
        return list(dict.fromkeys(item.model for item in self.items))

    def total_usd(self) -> float:
        """What the priced requests cost if all succeed (requests without a price count 0)."""
        return round(sum(item.cost_usd or 0.0 for item in self.items), 2)

    def unpriced(self) -> dict[str, int]:
        """Requests per model without a price: running them needs ``prices:`` in the sweep."""
        missing: dict[str, int] = {}
        for item in self.items:
            if item.cost_usd is None:
                missing[item.model] = missing.get(item.model, 0) + 1
        return missing

    def require_prices(self) -> None:
        """Raise :class:`InvalidInput` naming the models without a price (nothing may run without one)."""
        unpriced = self.unpriced()
        if unpriced:
            names = ", ".join(f"{alias} ({n} requests)" for alias, n in unpriced.items())
            example = next(iter(unpriced))
            raise InvalidInput(
                f"no price for {names}: give one in the sweep, e.g. prices: {{{example}: {{usd_per_clip: 0.50}}}}; "
                "nothing was submitted"
            )

    def estimate(self, concurrency: int = 4, seconds_per_request: Mapping[str, float] | None = None) -> Estimate:
        """Request count, total USD if all succeed (per model too), and worst-case wall time at ``concurrency``."""
        return estimate_requests([item.request for item in self.items], concurrency, seconds_per_request)

    def to_frame(self):
        """The planned requests as a pandas DataFrame (one row per item)."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "index": i.index,
                    "model": i.model,
                    "repeat": i.repeat,
                    "fingerprint": i.fingerprint,
                    "cost_usd": i.cost_usd,
                    **i.request.arguments(),
                }
                for i in self.items
            ]
        )


__all__ = ["MAX_REQUESTS", "WORST_CASE_SECONDS", "Estimate", "ModelEstimate", "Sweep", "SweepItem"]
