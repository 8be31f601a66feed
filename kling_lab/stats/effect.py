"""Does a parameter change the output more than repeats do? A permutation test on a run log.

Kling 2.0 Master has no seed: two runs of one request already differ. :func:`effect` compares the
spread between settings of one parameter with the spread between repeats of a setting::

    print(kl.effect(df, "cfg_scale", "qc_motion"))
    # cfg_scale changed qc_motion by 11.8 (0.25 → 0.75); repeats differ by 0.6 (SD); p = 0.0002 …

Runs are grouped in *cells*: one setting of ``param`` within one combination of the other inputs
that vary (the *strata*). The test (:mod:`kling_lab.permutation`) is PERMANOVA's pseudo-F: the ANOVA F
of a ``qc_*`` column, or its analogue on the distances between clips for ``"signature"``. Its null
distribution comes from shuffling the ``param`` settings within each stratum, so another input that
varies cannot pose as an effect of ``param``; small designs are tested exactly (every labelling once).
Only ``ok`` runs count, and each clip once (a cache hit is its source's clip again: one of them is kept).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kling_lab.errors import InvalidInput
from kling_lab.stats.permutation import DistanceSS, Labels, ScalarSS, SumOfSquares, permutation_test
from kling_lab.util.text import truncate

SETTING_COLUMNS = (
    "model",
    "prompt",
    "negative_prompt",
    "cfg_scale",
    "aspect_ratio",
    "duration_s",
    "resolution",
    "generate_audio",
    "image_sha256",
)
DistanceMetric = Callable[[list[str]], NDArray[np.float64]]


def _signature(paths: list[str]) -> NDArray[np.float64]:
    from kling_lab.media.signature import signature_distances

    return signature_distances(paths)


# Metrics defined by a distance between videos rather than a column: name → distance matrix of paths.
DISTANCE_METRICS: dict[str, DistanceMetric] = {"signature": _signature}


@dataclass(frozen=True)
class Effect:
    """The result of :func:`effect`; ``str()`` says it in words, :meth:`plot` shows it."""

    param: str
    metric: str
    kind: Literal["scalar", "distance"]
    levels: tuple[Any, ...]
    n: dict[Any, int]  # runs per setting
    means: dict[Any, float] | None  # scalar: per setting, averaged over strata; distance: None
    change: float  # scalar: last setting's mean − first's (2 settings), else max − min; distance: between−within
    between: float  # scalar: SD of the setting means; distance: mean distance between runs at different settings
    within: float  # scalar: pooled SD of repeats; distance: mean distance between repeats
    effect_size: float  # scalar: |change| / within SD; distance: (between − within) / within
    eta_squared: float  # share of the variation (within strata) that lies between settings
    statistic: float  # pseudo-F
    p_value: float
    n_permutations: int  # labellings compared: all of them when ``exact``, else random shuffles
    exact: bool  # True when the design has at most ``n_permutations`` labellings: each was used once
    strata: tuple[str, ...]
    arrangements: int  # distinct labellings of the runs' settings (shuffled within strata)
    min_p: float  # the smallest p this design can give: labellings as extreme as the most extreme one
    alpha: float = 0.05
    _x: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    _y: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0), repr=False)
    _stratum: tuple[str, ...] = field(default=(), repr=False)

    @property
    def significant(self) -> bool:
        return self.p_value <= self.alpha

    def __str__(self) -> str:
        how = f"exact, all {self.n_permutations} arrangements" if self.exact else f"{self.n_permutations} permutations"
        text = f"{self._observed()}; p = {self.p_value:.2g} ({how}) → {self._verdict()}"
        if self.min_p > self.alpha:
            text += (
                f" (With {len(self._x)} runs in {len(self.levels)} settings p cannot go below {self.min_p:.2g}, "
                "whatever the videos: add repeats for a test that can conclude.)"
            )
        return text

    def __repr__(self) -> str:
        return f"<Effect of {self.param} on {self.metric}: p = {self.p_value:.2g}; {self._verdict()}>"

    def _repr_html_(self) -> str:
        from kling_lab.util.html import card_html

        how = f"exact, all {self.n_permutations} arrangements" if self.exact else f"{self.n_permutations} permutations"
        per_setting = [
            (
                f"{self.param} = {_level(level)}",
                f"{self.n.get(level, 0)} runs"
                + (f", mean {self.metric} {_num(self.means[level])}" if self.means is not None else ""),
            )
            for level in self.levels
        ]
        spread = "SD of repeats" if self.kind == "scalar" else "mean distance between repeats"
        rows = [
            *per_setting,
            ("change between settings", _num(self.change) if self.kind == "scalar" else _num(self.between)),
            (spread, _num(self.within)),
            ("effect size", _num(self.effect_size)),
            ("share of variation (η²)", _num(self.eta_squared)),
            ("p", f"{self.p_value:.2g} ({how}; α = {self.alpha:g})"),
            *((("compared within", ", ".join(self.strata)),) if self.strata else ()),
        ]
        note = None
        if self.min_p > self.alpha:
            note = (
                f"With {len(self._x)} runs in {len(self.levels)} settings p cannot go below {self.min_p:.2g}, "
                "whatever the videos: add repeats for a test that can conclude."
            )
        verdict = f"{self._verdict()} {self._observed()}; p = {self.p_value:.2g}."
        return card_html(f"Effect of {self.param} on {self.metric}", rows, verdict=verdict, note=note)

    def _observed(self) -> str:
        """What changed between settings and how much repeats differ, in the metric's units."""
        if self.kind == "distance":
            where = f", within each {', '.join(self.strata)}" if self.strata else ""
            return (
                f"{self.param} changed the {self.metric}: runs at different settings are {_num(self.between)} "
                f"apart{where}, repeats {_num(self.within)} (mean distance)"
            )
        first, last = self._extremes()
        by = (
            f"by {_num(self.change)}"
            if len(self.levels) == 2
            else f"by up to {_num(self.change)} across {len(self.levels)} settings"
        )
        where = f"; compared within each {', '.join(self.strata)}" if self.strata else ""
        return (
            f"{self.param} changed {self.metric} {by} ({_level(first)} → {_level(last)}{where}); "
            f"repeats differ by {_num(self.within)} (SD)"
        )

    def _verdict(self) -> str:
        if self.significant:
            return f"{self.param} matters more than run-to-run variation."
        what = self.metric if self.kind == "scalar" else f"the {self.metric}"
        return (
            f"no evidence that {self.param} changes {what} more than repeats do: the differences between "
            "settings are within run-to-run variation."
        )

    def _extremes(self) -> tuple[Any, Any]:
        assert self.means is not None
        if len(self.levels) == 2:
            return self.levels[0], self.levels[1]
        return min(self.means, key=self.means.__getitem__), max(self.means, key=self.means.__getitem__)

    def plot(self, ax: Any = None) -> Any:
        """Each run per setting (jittered, coloured by stratum) with the setting means; a matplotlib Figure."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(2.0 + 1.3 * len(self.levels), 3.6), layout="constrained") if ax is None else ax.figure
        ax = fig.add_subplot() if ax is None else ax
        jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(self._x))
        stratum = np.asarray(self._stratum, dtype=object)
        for name in dict.fromkeys(self._stratum):
            mine = stratum == name
            ax.scatter(self._x[mine] + jitter[mine], self._y[mine], s=22, alpha=0.8, label=name or "runs")
        means = (
            [self._y[self._x == i].mean() for i in range(len(self.levels))]
            if self.means is None
            else [self.means[level] for level in self.levels]
        )
        ax.hlines(
            means, np.arange(len(means)) - 0.3, np.arange(len(means)) + 0.3, colors="black", lw=2, label="setting mean"
        )
        ax.set_xticks(range(len(self.levels)), [_level(level, 18) for level in self.levels])
        ax.set_xlabel(self.param)
        ax.set_ylabel(self.metric if self.kind == "scalar" else f"{self.metric} (1st principal coordinate)")
        ax.set_title(f"{self.param} → {self.metric}: p = {self.p_value:.2g}", fontsize=10)
        ax.legend(fontsize=7, loc="best")
        return fig


def effect(
    runs: pd.DataFrame,
    param: str = "cfg_scale",
    metric: str = "qc_motion",
    *,
    within: str | Sequence[str] | None = None,
    n_permutations: int = 5000,
    seed: int = 0,
    alpha: float = 0.05,
    store: Any = None,
) -> Effect:
    """Test whether ``param`` changes ``metric`` more than repeats of one setting do.

    ``metric``: a numeric column (``qc_motion``, ...) or a name in :data:`DISTANCE_METRICS`
    (``"signature"``: see :mod:`kling_lab.signature`). ``within``: the other inputs to hold fixed
    (default: every input in :data:`SETTING_COLUMNS` that varies in ``runs``; ``[]`` for none).
    Needs at least two settings and two runs of every setting (cell). ``n_permutations``: random
    shuffles, or fewer when the design has fewer distinct labellings (then all, an exact test).
    ``store`` resolves store-relative ``video_path`` values for distance metrics.
    """
    if n_permutations < 1:
        raise InvalidInput(f"n_permutations must be >= 1, got {n_permutations}")
    kind: Literal["scalar", "distance"] = "distance" if metric in DISTANCE_METRICS else "scalar"
    df = _observations(runs, param, metric, kind)
    design = _Design.of(df, param, _strata(df, param, within), identity=metric if kind == "scalar" else "video_path")
    labels = design.labels
    if kind == "scalar":
        values = design.frame[metric].to_numpy(dtype=np.float64)
        ss: SumOfSquares = ScalarSS(values)
    else:
        distances = DISTANCE_METRICS[metric](_video_paths(design.frame, store))
        values = _principal_coordinate(distances)
        ss = DistanceSS(distances)
    test = permutation_test(ss, labels, n_permutations, seed)

    if kind == "scalar":
        means = _balanced_means(values, labels, design.levels)
        spread = np.array(list(means.values()))
        change = float(spread[1] - spread[0]) if len(spread) == 2 else float(spread.max() - spread.min())
        within_spread, between_spread = math.sqrt(test.ss_cells / test.df_within), float(spread.std(ddof=1))
        size = abs(change) / within_spread if within_spread > 0 else math.inf
    else:
        means = None
        between_spread, within_spread = _mean_distances(distances, labels)
        change = between_spread - within_spread
        size = change / within_spread if within_spread > 0 else math.inf
    return Effect(
        param=param,
        metric=metric,
        kind=kind,
        levels=tuple(design.levels),
        n={lv: int((labels.level == i).sum()) for i, lv in enumerate(design.levels)},
        means=means,
        change=change,
        between=between_spread,
        within=within_spread,
        effect_size=float(size),
        eta_squared=1 - test.ss_cells / test.ss_strata if test.ss_strata > 0 else 0.0,
        statistic=test.statistic,
        p_value=test.p_value,
        n_permutations=test.n_permutations,
        exact=test.exact,
        strata=design.strata,
        arrangements=labels.arrangements(),
        min_p=labels.min_p(),
        alpha=alpha,
        _x=labels.level,
        _y=np.asarray(values, dtype=np.float64),
        _stratum=tuple(design.stratum_names[labels.stratum]),
    )


# -- rows and design -------------------------------------------------------------------------
def _observations(runs: pd.DataFrame, param: str, metric: str, kind: str) -> pd.DataFrame:
    """The runs that are independent observations of ``metric``: ok, measured, each clip once."""
    needed = [param, "video_path" if kind == "distance" else metric]
    missing = [c for c in needed if c not in runs.columns]
    if missing:
        hint = (
            ""
            if kind == "distance"
            else f"; metrics here: {', '.join(c for c in runs.columns if str(c).startswith('qc_')) or 'none'}"
            f" (or one of {', '.join(DISTANCE_METRICS)})"
        )
        raise InvalidInput(f"runs has no column {missing[0]!r}{hint}")
    df = runs
    if "status" in df.columns:
        df = df[(df["status"] == "ok").fillna(False).astype(bool)]
    df = df.dropna(subset=needed)
    if "video_sha256" in df.columns:  # each clip once: a cache hit is its source's clip again
        clip = df["video_sha256"]
        df = df[clip.isna() | ~clip.duplicated()]
    if kind == "scalar" and not pd.api.types.is_numeric_dtype(df[metric]):
        raise InvalidInput(f"{metric!r} is not numeric; pass a qc_* column or one of {', '.join(DISTANCE_METRICS)}")
    return df.reset_index(drop=True)


def _strata(df: pd.DataFrame, param: str, within: str | Sequence[str] | None) -> list[str]:
    if within is None:
        # An input that only changes along with ``param`` (e.g. cfg_scale, which only Kling models take,
        # when param is "model") is part of what param changes, not a stratum that could pose as it.
        return [
            c
            for c in SETTING_COLUMNS
            if c != param
            and c in df.columns
            and df[c].nunique(dropna=False) > 1
            and df.groupby(param, dropna=False)[c].nunique(dropna=False).max() > 1
        ]
    names = [within] if isinstance(within, str) else list(within)
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise InvalidInput(f"within: runs has no column {missing[0]!r}")
    return [c for c in names if c != param]


@dataclass(frozen=True)
class _Design:
    """The usable runs, sorted (the same runs always give the same p), with their settings and strata."""

    frame: pd.DataFrame
    levels: list[Any]  # the settings of ``param``, sorted
    labels: Labels
    stratum_names: NDArray[np.object_]  # "aspect_ratio='16:9'" per stratum ("" when nothing else varies)
    strata: tuple[str, ...]

    @classmethod
    def of(cls, df: pd.DataFrame, param: str, strata: list[str], identity: str) -> _Design:
        key = "run_id" if "run_id" in df.columns else identity
        df = df.sort_values([param, *strata, key], kind="stable").reset_index(drop=True)
        level, levels = pd.factorize(df[param], sort=True)
        if strata:
            grouped = df.groupby(strata, dropna=False, sort=True)
            stratum: NDArray[np.int64] = np.asarray(grouped.ngroup(), dtype=np.int64)
            keys = [k if isinstance(k, tuple) else (k,) for k in grouped.size().index]
            names = [", ".join(f"{c}={_level(v, 14)}" for c, v in zip(strata, k)) for k in keys]
        else:
            stratum, names = np.zeros(len(df), dtype=np.int64), [""]
        design = cls(
            df,
            [_plain(v) for v in levels],
            Labels(level.astype(np.int64), stratum, len(levels), len(names)),
            np.array(names, dtype=object),
            tuple(strata),
        )
        design.check(param)
        return design

    def check(self, param: str) -> None:
        """Raise :class:`InvalidInput` unless there are two settings and every cell has two runs or more."""
        if len(self.levels) < 2:
            found = f"only {param}={_level(self.levels[0])}" if self.levels else "no usable runs"
            raise InvalidInput(f"{param}: an effect needs runs at two or more settings; found {found}")
        counts = pd.crosstab(self.labels.stratum, self.labels.level)
        for stratum_label, row in counts.iterrows():
            s = int(stratum_label)  # type: ignore[call-overload]  # crosstab of int codes: int labels
            for level_label, n in row.items():
                code = int(level_label)  # type: ignore[call-overload]
                if n == 1:
                    where = f" with {self.stratum_names[s]}" if self.stratum_names[s] else ""
                    raise InvalidInput(
                        f"{param}={_level(self.levels[code])}{where} has 1 run: comparing settings with repeats "
                        "needs at least 2 runs of every setting, to see how much repeats alone differ (Kling has "
                        "no seed). Run the sweep with repeats=2 or more, e.g. Sweep.grid(..., repeats=3)."
                    )
        if not ((counts > 0).sum(axis=1) > 1).any():
            raise InvalidInput(
                f"{param}: no combination of the other inputs has runs at two settings of {param}; "
                "pass within=[] to compare across them anyway"
            )


# -- summaries -------------------------------------------------------------------------------
def _balanced_means(values: NDArray[np.float64], labels: Labels, levels: list[Any]) -> dict[Any, float]:
    """Per setting: the mean over strata of the cell means (so unequal strata do not tilt it)."""
    frame = pd.DataFrame({"y": values, "level": labels.level, "stratum": labels.stratum})
    cell_means = frame.groupby(["level", "stratum"])["y"].mean().groupby(level="level").mean()
    return {name: float(cell_means[i]) for i, name in enumerate(levels)}


def _mean_distances(distances: NDArray[np.float64], labels: Labels) -> tuple[float, float]:
    """Mean distance between runs of different settings (same stratum) and between repeats (same cell)."""
    upper = np.triu(np.ones_like(distances, dtype=bool), k=1)
    same_stratum = labels.stratum[:, None] == labels.stratum[None, :]
    same_level = labels.level[:, None] == labels.level[None, :]
    return (
        float(distances[upper & same_stratum & ~same_level].mean()),
        float(distances[upper & same_stratum & same_level].mean()),
    )


def _principal_coordinate(distances: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each run's coordinate on the first axis of classical MDS of ``distances`` (for plotting)."""
    n = len(distances)
    centring = np.eye(n) - 1.0 / n
    b = -0.5 * centring @ (distances**2) @ centring
    eigenvalues, eigenvectors = np.linalg.eigh(b)
    return eigenvectors[:, -1] * math.sqrt(max(eigenvalues[-1], 0.0))


def _video_paths(df: pd.DataFrame, store: Any) -> list[str]:
    from kling_lab.store.run_store import RunStore

    resolved = RunStore.coerce(store)
    return [str(resolved.video_file(p)) for p in df["video_path"]]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _level(value: Any, width: int = 28) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return repr(truncate(value, width))
    return str(value)


def _num(value: float) -> str:
    return f"{value:.3g}"


__all__ = ["DISTANCE_METRICS", "SETTING_COLUMNS", "Effect", "effect"]
