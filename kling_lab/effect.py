"""Does a parameter change the output more than repeats do? A permutation test on a run log.

Kling 2.0 Master has no seed: two runs of one request already differ. :func:`effect` compares the
spread between settings of one parameter with the spread between repeats of a setting::

    print(kl.effect(df, "cfg_scale", "qc_motion"))
    # cfg_scale changed qc_motion by 11.8 (0.25 → 0.75); repeats differ by 0.6 (SD); p = 0.0002 …

Runs are grouped in *cells* (one setting of ``param`` within one combination of the other inputs
that vary, the *strata*). With ``d_ij`` the difference between runs ``i`` and ``j`` (``|x_i − x_j|``
for a ``qc_*`` column; the signature distance for ``"signature"``) and ``SS(G) = Σ_groups
Σ_{i<j in group} d_ij² / n_group``, the statistic is the pseudo-F of PERMANOVA (the ANOVA F for a
scalar metric)::

    F = ((SS(strata) − SS(cells)) / df_between) / (SS(cells) / df_within)

Its null distribution comes from shuffling the ``param`` labels within each stratum, so another
input that varies cannot pose as an effect of ``param``. ``p = (1 + #{F_perm ≥ F}) / (1 + N)``.
Only ``ok`` runs that are not cache hits count (a cache hit is the same video again).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .errors import InvalidInput

SETTING_COLUMNS = ("prompt", "negative_prompt", "cfg_scale", "aspect_ratio", "duration_s")
DistanceMetric = Callable[[list[str]], NDArray[np.float64]]


def _signature(paths: list[str]) -> NDArray[np.float64]:
    from .signature import signature_distances

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
    change: float  # scalar: mean of the last setting − the first (2 settings) or max − min; distance: between − within
    between: float  # scalar: SD of the setting means; distance: mean distance between runs of different settings
    within: float  # scalar: pooled SD of repeats; distance: mean distance between repeats
    effect_size: float  # scalar: |change| / within SD; distance: (between − within) / within
    eta_squared: float  # share of the variation (within strata) that lies between settings
    statistic: float  # pseudo-F
    p_value: float
    n_permutations: int
    strata: tuple[str, ...]
    arrangements: int  # distinct shuffles of the labels: p cannot go below 1 / arrangements
    alpha: float = 0.05
    _x: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    _y: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0), repr=False)
    _stratum: tuple[str, ...] = field(default=(), repr=False)

    @property
    def significant(self) -> bool:
        return self.p_value <= self.alpha

    def __str__(self) -> str:
        if self.kind == "scalar":
            first, last = self._extremes()
            by = f"by {_num(self.change)}" if len(self.levels) == 2 else \
                f"by up to {_num(self.change)} across {len(self.levels)} settings"
            where = f"; compared within each {', '.join(self.strata)}" if self.strata else ""
            head = (f"{self.param} changed {self.metric} {by} ({_level(first)} → {_level(last)}{where}); "
                    f"repeats differ by {_num(self.within)} (SD)")
            what = self.metric
        else:
            where = f", within each {', '.join(self.strata)}" if self.strata else ""
            head = (f"{self.param} and the {self.metric}: runs of different settings are {_num(self.between)} apart"
                    f"{where}, repeats {_num(self.within)} (mean distance)")
            what = f"the {self.metric}"
        p = f"p = {self.p_value:.2g} ({self.n_permutations} permutations)"
        if self.significant:
            verdict = f"{self.param} matters more than run-to-run variation."
        else:
            verdict = (f"no evidence that {self.param} changes {what} more than repeats do: the differences "
                       "between settings are within run-to-run variation.")
        text = f"{head}; {p} → {verdict}"
        if 1 / self.arrangements > self.alpha:
            text += (f" (Only {self.arrangements} distinct shuffles of these runs exist, so p cannot go below "
                     f"{1 / self.arrangements:.2g}: add repeats for a test that can conclude.)")
        return text

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
        means = [self._y[self._x == i].mean() for i in range(len(self.levels))] if self.means is None \
            else [self.means[level] for level in self.levels]
        ax.hlines(means, np.arange(len(means)) - 0.3, np.arange(len(means)) + 0.3, colors="black", lw=2,
                  label="setting mean")
        ax.set_xticks(range(len(self.levels)), [_level(level, 18) for level in self.levels])
        ax.set_xlabel(self.param)
        ax.set_ylabel(self.metric if self.kind == "scalar" else f"{self.metric} (1st principal coordinate)")
        ax.set_title(f"{self.param} → {self.metric}: p = {self.p_value:.2g}", fontsize=10)
        ax.legend(fontsize=7, loc="best")
        return fig


def effect(runs: pd.DataFrame, param: str = "cfg_scale", metric: str = "qc_motion", *,
           within: str | Sequence[str] | None = None, n_permutations: int = 5000, seed: int = 0,
           alpha: float = 0.05, store: Any = None) -> Effect:
    """Test whether ``param`` changes ``metric`` more than repeats of one setting do.

    ``metric``: a numeric column (``qc_motion``, ...) or a name in :data:`DISTANCE_METRICS`
    (``"signature"``: see :mod:`kling_lab.signature`). ``within``: the other inputs to hold fixed
    (default: every input in :data:`SETTING_COLUMNS` that varies in ``runs``; ``[]`` for none).
    Needs at least two settings and two runs of every setting (cell). ``store`` resolves
    store-relative ``video_path`` values for distance metrics.
    """
    if n_permutations < 1:
        raise InvalidInput(f"n_permutations must be >= 1, got {n_permutations}")
    kind: Literal["scalar", "distance"] = "distance" if metric in DISTANCE_METRICS else "scalar"
    df = _usable(runs, param, metric, kind)
    strata = _strata(df, param, within)
    level_codes, levels = pd.factorize(df[param], sort=True)
    stratum_codes = df.groupby(list(strata), dropna=False, sort=True).ngroup().to_numpy() if strata \
        else np.zeros(len(df), dtype=np.int64)
    stratum_names = _stratum_names(df, strata)
    _check_design(df, param, level_codes, stratum_codes, levels, stratum_names)

    if kind == "scalar":
        values = df[metric].to_numpy(dtype=np.float64)
        ss = _ScalarSS(values - values.mean())
    else:
        distances = DISTANCE_METRICS[metric](_video_paths(df, store))
        values = _principal_coordinate(distances)
        ss = _DistanceSS(distances)
    n_levels = len(levels)
    cells = stratum_codes * n_levels + level_codes
    n_cells = int(stratum_codes.max() + 1) * n_levels
    ss_strata = float(ss(stratum_codes[None, :], int(stratum_codes.max() + 1))[0])
    ss_cells = float(ss(cells[None, :], n_cells)[0])
    df_between = sum(len(np.unique(level_codes[stratum_codes == s])) - 1 for s in np.unique(stratum_codes))
    df_within = len(df) - len(np.unique(cells))
    statistic = _pseudo_f(ss_strata, ss_cells, df_between, df_within)

    rng = np.random.default_rng(seed)
    tolerance = 1e-9 * max(ss_strata, 1e-300)
    exceed = 0
    for block in _blocks(n_permutations):
        shuffled = _shuffle_within(level_codes, stratum_codes, block, rng)
        exceed += int((ss(stratum_codes * n_levels + shuffled, n_cells) <= ss_cells + tolerance).sum())
    p_value = (1 + exceed) / (1 + n_permutations) if ss_strata > 0 else 1.0

    level_list = [_plain(v) for v in levels]
    counts = {lv: int((level_codes == i).sum()) for i, lv in enumerate(level_list)}
    eta = (ss_strata - ss_cells) / ss_strata if ss_strata > 0 else 0.0
    if kind == "scalar":
        means = _balanced_means(values, level_codes, stratum_codes, level_list)
        mean_values = np.array(list(means.values()))
        change = (mean_values[1] - mean_values[0]) if n_levels == 2 else float(mean_values.max() - mean_values.min())
        within_spread = math.sqrt(ss_cells / df_within)
        between_spread = float(mean_values.std(ddof=1))
        size = abs(change) / within_spread if within_spread > 0 else math.inf
    else:
        means = None
        between_spread, within_spread = _mean_distances(distances, level_codes, stratum_codes)
        change = between_spread - within_spread
        size = change / within_spread if within_spread > 0 else math.inf
    return Effect(param=param, metric=metric, kind=kind, levels=tuple(level_list), n=counts, means=means,
                  change=float(change), between=between_spread, within=within_spread, effect_size=float(size),
                  eta_squared=float(eta), statistic=statistic, p_value=float(p_value),
                  n_permutations=n_permutations, strata=tuple(strata),
                  arrangements=_arrangements(level_codes, stratum_codes), alpha=alpha,
                  _x=level_codes.astype(np.int64), _y=np.asarray(values, dtype=np.float64),
                  _stratum=tuple(stratum_names[stratum_codes]))


# -- rows and design -------------------------------------------------------------------------
def _usable(runs: pd.DataFrame, param: str, metric: str, kind: str) -> pd.DataFrame:
    """The runs that are independent observations of ``metric`` (ok, not cache hits, measured)."""
    needed = [param, "video_path" if kind == "distance" else metric]
    missing = [c for c in needed if c not in runs.columns]
    if missing:
        hint = "" if kind == "distance" else \
            f"; metrics here: {', '.join(c for c in runs.columns if str(c).startswith('qc_')) or 'none'}" \
            f" (or one of {', '.join(DISTANCE_METRICS)})"
        raise InvalidInput(f"runs has no column {missing[0]!r}{hint}")
    df = runs
    if "status" in df.columns:
        df = df[(df["status"] == "ok").fillna(False).astype(bool)]
    if "cache_hit" in df.columns:
        df = df[~df["cache_hit"].fillna(False).astype(bool)]
    df = df.dropna(subset=needed)
    if kind == "scalar" and not pd.api.types.is_numeric_dtype(df[metric]):
        raise InvalidInput(f"{metric!r} is not numeric; pass a qc_* column or one of {', '.join(DISTANCE_METRICS)}")
    return df.reset_index(drop=True)


def _strata(df: pd.DataFrame, param: str, within: str | Sequence[str] | None) -> list[str]:
    if within is None:
        return [c for c in SETTING_COLUMNS if c != param and c in df.columns and df[c].nunique(dropna=False) > 1]
    names = [within] if isinstance(within, str) else list(within)
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise InvalidInput(f"within: runs has no column {missing[0]!r}")
    return [c for c in names if c != param]


def _stratum_names(df: pd.DataFrame, strata: list[str]) -> NDArray[np.object_]:
    if not strata:
        return np.array([""], dtype=object)
    groups = df.groupby(strata, dropna=False, sort=True).size().index
    keys = groups if isinstance(groups, pd.MultiIndex) else [(k,) for k in groups]
    return np.array([", ".join(f"{c}={_level(v, 14)}" for c, v in zip(strata, key)) for key in keys], dtype=object)


def _check_design(df: pd.DataFrame, param: str, level_codes: NDArray[np.int64], stratum_codes: NDArray[np.int64],
                  levels: Any, stratum_names: NDArray[np.object_]) -> None:
    if len(levels) < 2:
        found = f"only {param}={_level(_plain(levels[0]))}" if len(levels) else "no usable runs"
        raise InvalidInput(f"{param}: an effect needs runs at two or more settings; found {found}")
    cells = pd.crosstab(stratum_codes, level_codes)
    for s, row in cells.iterrows():
        for code, n in row.items():
            if n == 1:
                where = f" with {stratum_names[s]}" if stratum_names[s] else ""
                raise InvalidInput(
                    f"{param}={_level(_plain(levels[code]))}{where} has 1 run: comparing settings with repeats needs "
                    "at least 2 runs of every setting, to see how much repeats alone differ (Kling has no "
                    "seed). Run the sweep with repeats=2 or more, e.g. Sweep.grid(..., repeats=3).")
    if not any((row > 0).sum() > 1 for _, row in cells.iterrows()):
        raise InvalidInput(f"{param}: no combination of the other inputs has runs at two settings of {param}; "
                           "pass within=[] to compare across them anyway")


# -- sums of squares -------------------------------------------------------------------------
class _ScalarSS:
    """Σ_groups Σ (x − mean)²  for each row of group ids (one row per labelling)."""

    def __init__(self, x: NDArray[np.float64]) -> None:
        self.x, self.total = x, float((x**2).sum())

    def __call__(self, groups: NDArray[np.int64], n_groups: int) -> NDArray[np.float64]:
        m = len(groups)
        flat = (groups + np.arange(m)[:, None] * n_groups).ravel()
        sums = np.bincount(flat, weights=np.tile(self.x, m), minlength=m * n_groups).reshape(m, n_groups)
        counts = np.bincount(flat, minlength=m * n_groups).reshape(m, n_groups)
        return self.total - (sums**2 / np.maximum(counts, 1)).sum(axis=1)


class _DistanceSS:
    """Σ_groups Σ_{i<j in group} d_ij² / n_group  for each row of group ids."""

    def __init__(self, distances: NDArray[np.float64]) -> None:
        self.d2 = distances**2

    def __call__(self, groups: NDArray[np.int64], n_groups: int) -> NDArray[np.float64]:
        onehot = (groups[:, :, None] == np.arange(n_groups)).astype(np.float64)  # (m, n, groups)
        pair_sums = (onehot * np.matmul(self.d2, onehot)).sum(axis=1)  # ordered pairs: twice Σ_{i<j}
        return (pair_sums / (2 * np.maximum(onehot.sum(axis=1), 1))).sum(axis=1)


def _pseudo_f(ss_strata: float, ss_cells: float, df_between: int, df_within: int) -> float:
    if ss_cells <= 0:
        return math.inf if ss_strata > 0 else math.nan
    return ((ss_strata - ss_cells) / df_between) / (ss_cells / df_within)


def _blocks(total: int, size: int = 256) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def _shuffle_within(levels: NDArray[np.int64], strata: NDArray[np.int64], m: int,
                    rng: np.random.Generator) -> NDArray[np.int64]:
    """``m`` copies of ``levels``, each shuffled independently within every stratum."""
    out = np.tile(levels, (m, 1))
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        out[:, idx] = rng.permuted(out[:, idx], axis=1)
    return out


def _arrangements(levels: NDArray[np.int64], strata: NDArray[np.int64]) -> int:
    """How many distinct labellings shuffling within strata can produce (a product of multinomials)."""
    total = 1
    for s in np.unique(strata):
        counts = np.bincount(levels[strata == s])
        ways = math.factorial(int(counts.sum()))
        for c in counts:
            ways //= math.factorial(int(c))
        total *= ways
    return total


# -- summaries -------------------------------------------------------------------------------
def _balanced_means(values: NDArray[np.float64], levels: NDArray[np.int64], strata: NDArray[np.int64],
                    names: list[Any]) -> dict[Any, float]:
    """Per setting: the mean over strata of the cell means (so unequal strata do not tilt it)."""
    frame = pd.DataFrame({"y": values, "level": levels, "stratum": strata})
    cell_means = frame.groupby(["level", "stratum"])["y"].mean().groupby(level="level").mean()
    return {names[i]: float(cell_means[i]) for i in range(len(names))}


def _mean_distances(distances: NDArray[np.float64], levels: NDArray[np.int64],
                    strata: NDArray[np.int64]) -> tuple[float, float]:
    """Mean distance between runs of different settings (same stratum) and between repeats."""
    upper = np.triu(np.ones_like(distances, dtype=bool), k=1)
    same_stratum = strata[:, None] == strata[None, :]
    same_level = levels[:, None] == levels[None, :]
    between = distances[upper & same_stratum & ~same_level]
    within = distances[upper & same_stratum & same_level]
    return float(between.mean()), float(within.mean())


def _principal_coordinate(distances: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each run's coordinate on the first axis of classical MDS of ``distances`` (for plotting)."""
    n = len(distances)
    centring = np.eye(n) - 1.0 / n
    b = -0.5 * centring @ (distances**2) @ centring
    eigenvalues, eigenvectors = np.linalg.eigh(b)
    return eigenvectors[:, -1] * math.sqrt(max(eigenvalues[-1], 0.0))


def _video_paths(df: pd.DataFrame, store: Any) -> list[str]:
    from .store import RunStore

    resolved = RunStore.coerce(store)
    return [str(resolved.video_file(p)) for p in df["video_path"]]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _level(value: Any, width: int = 28) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        text = value if len(value) <= width else value[: width - 1] + "…"
        return repr(text)
    return str(value)


def _num(value: float) -> str:
    return f"{value:.3g}"


__all__ = ["DISTANCE_METRICS", "Effect", "SETTING_COLUMNS", "effect"]
