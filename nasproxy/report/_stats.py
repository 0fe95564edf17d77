"""How well a proxy's scores rank architectures against a ground truth: signed rank correlations with
bootstrap intervals, the paper's top-k protocol, top-k overlap and regret; and the ground truth's own noise
ceiling; and which design choices a proxy over- or under-rates. Everything takes plain DataFrames and
returns typed results; nothing here reads storage or draws."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

MIN_PAIRS = 5  # fewer pairs than this and a rank correlation is noise: it is left empty, with the reason
TOP_K_SPEARMAN = (5, 10, 20)  # Spearman over the proxy's k best architectures with truth (paper: k = 10)
TOP_K_PRECISION = (5, 10)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class ProxyStats:
    """One proxy against the ground truth. ``None`` marks a statistic that could not be computed; ``notes``
    says why."""

    proxy: str
    architectures: int  # architectures the proxy scored
    with_truth: int  # of those, how many have a ground truth
    spearman: float | None
    spearman_ci: Interval | None
    kendall: float | None
    kendall_ci: Interval | None
    top_spearman: dict[int, float | None]  # k -> Spearman over the proxy's top-k architectures with truth
    precision: dict[int, float | None]  # k -> |proxy's top-k ∩ truth's top-k| / k, among architectures with truth
    selected: str | None  # the architecture the proxy ranks first
    selected_truth: float | None
    regret: float | None  # best ground truth among the proxy's architectures minus selected_truth
    repeat_spearman: tuple[float, ...] = ()  # Spearman of each single repeat's scores (when there are repeats)
    notes: tuple[str, ...] = ()
    # k -> 95 % bootstrap interval with the top k re-selected in every resample (top_k_intervals)
    top_spearman_ci: dict[int, Interval | None] = field(default_factory=dict)
    precision_ci: dict[int, Interval | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Ceiling:
    """The ground truth against itself: how well one of its repeats ranks architectures like another."""

    architectures: int
    repeats: int
    repeat_vs_repeat: float | None  # mean Spearman over every pair of repeats
    pairs: tuple[float, ...] = field(default=())  # each pair's Spearman
    ceiling: float | None = None  # expected Spearman of a noise-free proxy with the mean of the repeats
    notes: tuple[str, ...] = ()
    # the same over a top 10: one repeat's top 10 ranked by another repeat (mean over ordered pairs), and the
    # Spearman-Brown value for the mean of the repeats
    top10_repeat_vs_repeat: float | None = None
    top10_ceiling: float | None = None


def interval_columns(name: str, interval: Interval | None) -> dict[str, float | None]:
    """A table's two columns for ``name``'s interval, ``<name>_ci_low`` and ``<name>_ci_high`` (empty without one)."""
    return {
        f"{name}_ci_low": None if interval is None else interval.low,
        f"{name}_ci_high": None if interval is None else interval.high,
    }


def spearman(x, y) -> float:
    """Spearman's rho as scipy computes it (Pearson correlation of average ranks); NaN if either is constant."""
    return float(_spearman_rows(np.asarray(x, float)[None], np.asarray(y, float)[None])[0])


def kendall(x, y) -> float:
    """Kendall's tau-b as scipy computes it (ties in either variable excluded from that side's pair count)."""
    return float(_kendall_rows(np.asarray(x, float)[None], np.asarray(y, float)[None])[0])


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Spearman of [B, n] arrays."""
    return _pearson_rows(sps.rankdata(x, axis=1), sps.rankdata(y, axis=1))


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=1) / denom
    return np.where(denom > 0, np.clip(r, -1.0, 1.0), np.nan)


def _kendall_rows(x: np.ndarray, y: np.ndarray, chunk_elements: int = 2**24) -> np.ndarray:
    """Row-wise Kendall tau-b of [B, n] arrays: (concordant - discordant) / sqrt(pairs untied in x * in y)."""
    n = x.shape[1]
    out = np.empty(len(x))
    rows = max(1, chunk_elements // max(1, n * n))
    for start in range(0, len(x), rows):
        xs, ys = x[start : start + rows], y[start : start + rows]
        sx = np.sign(xs[:, :, None] - xs[:, None, :]).astype(np.int8)
        sy = np.sign(ys[:, :, None] - ys[:, None, :]).astype(np.int8)
        s = (sx.astype(np.int32) * sy).sum(axis=(1, 2)) / 2
        nx = np.count_nonzero(sx, axis=(1, 2)) / 2
        ny = np.count_nonzero(sy, axis=(1, 2)) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + rows] = np.where((nx > 0) & (ny > 0), s / np.sqrt(nx * ny), np.nan)
    return out


def resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """The bootstrap's draws of ``n`` architectures with replacement, [resamples, n]. Every statistic draws
    them this way, so that statistics computed with the same seed see the same resamples."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_intervals(
    x, y, *, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[Interval | None, Interval | None]:
    """Percentile bootstrap intervals of (Spearman, Kendall) over architectures, resampled with replacement.
    Resamples in which a correlation is undefined (a constant resample) are left out."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    idx = resample_indices(len(x), resamples, seed)
    bx, by = x[idx], y[idx]
    rho, tau = _spearman_rows(bx, by), _kendall_rows(bx, by)
    return percentile_interval(rho, resamples, level), percentile_interval(tau, resamples, level)


def percentile_interval(
    values: np.ndarray, resamples: int, level: float, *, estimate: float | None = None
) -> Interval | None:
    """The central ``level`` of the finite resampled values; None where fewer than half are finite. Given the
    ``estimate`` they resample (a paired difference), a bound a rounding error away from it is it: a
    difference the same in every resample would otherwise get an interval that excludes it."""
    values = values[np.isfinite(values)]
    if len(values) < resamples / 2:
        return None
    low, high = (float(b) for b in np.quantile(values, [(1 - level) / 2, (1 + level) / 2]))
    if estimate is not None:
        low, high = (estimate if abs(b - estimate) < 1e-9 else b for b in (low, high))
    return Interval(low, high)


def rank_statistics(
    frame: pd.DataFrame,
    *,
    resamples: int = 1000,
    seed: int = 0,
    repeats: pd.DataFrame | None = None,
    proxies: Sequence[str] = (),
) -> dict[str, ProxyStats]:
    """Statistics of every proxy in ``frame`` (columns ``architecture``, ``proxy``, ``score``, ``truth``;
    ``truth`` NaN where the architecture has none; a higher score means a better architecture), and of each
    of ``proxies`` that has no row there yet (a search just started): none scored.

    ``repeats`` (columns ``architecture``, ``proxy``, ``repeat``, ``score``), where a proxy trains several
    networks per architecture, adds the Spearman of each repeat's scores alone: the spread that comes from
    the proxy's own training noise."""
    missing = {"architecture", "proxy", "score", "truth"} - set(frame.columns)
    if missing:
        raise ValueError(f"rank_statistics needs columns {sorted(missing)}")
    truth = frame.groupby("architecture")["truth"].first()
    result = {}
    for proxy in sorted(set(frame["proxy"]) | set(proxies)):
        rows = frame[frame["proxy"] == proxy]
        reps = None if repeats is None else repeats[repeats["proxy"] == proxy]
        result[proxy] = _one_proxy(str(proxy), rows, truth, resamples=resamples, seed=seed, repeats=reps)
    return result


def _one_proxy(proxy, rows, truth, *, resamples, seed, repeats) -> ProxyStats:
    rows = rows.dropna(subset=["score"])
    if rows.empty:
        return ProxyStats(
            proxy=proxy,
            architectures=0,
            with_truth=0,
            spearman=None,
            spearman_ci=None,
            kendall=None,
            kendall_ci=None,
            top_spearman={},
            precision={},
            selected=None,
            selected_truth=None,
            regret=None,
            notes=("no architecture scored yet",),
        )
    notes: list[str] = []
    if rows["architecture"].duplicated().any():
        raise ValueError(f"proxy {proxy!r} scores some architecture twice")
    # ranked best first; ties in the score broken by architecture id, so that "first" is reproducible
    ranked = rows.sort_values(["score", "architecture"], ascending=[False, True], kind="mergesort")
    paired = ranked[ranked["truth"].notna()]
    x, y = paired["score"].to_numpy(float), paired["truth"].to_numpy(float)
    rho = tau = None
    rho_ci = tau_ci = None
    if len(paired) < MIN_PAIRS:
        notes.append(f"only {len(paired)} architectures have a ground truth (correlations need {MIN_PAIRS})")
    elif np.ptp(x) == 0 or np.ptp(y) == 0:
        notes.append("constant scores or truth: no rank correlation")
    else:
        rho, tau = _finite(sps.spearmanr(x, y).statistic), _finite(sps.kendalltau(x, y).statistic)
        rho_ci, tau_ci = bootstrap_intervals(x, y, resamples=resamples, seed=seed)
    top_spearman = {}
    for k in TOP_K_SPEARMAN:
        head = paired.head(k)
        if len(paired) < k:
            top_spearman[k] = None
            notes.append(f"top{k}: only {len(paired)} architectures with truth")
        elif np.ptp(head["score"]) == 0 or np.ptp(head["truth"]) == 0:
            top_spearman[k] = None
            notes.append(f"top{k}: constant scores or truth")
        else:
            top_spearman[k] = _finite(sps.spearmanr(head["score"], head["truth"]).statistic)
    top_ci, precision_ci = {}, {}
    for k in sorted(set(TOP_K_SPEARMAN) | set(TOP_K_PRECISION)):
        top_ci[k], precision_ci[k] = top_k_intervals(x, y, k, resamples=resamples, seed=seed)
    precision = {}
    for k in TOP_K_PRECISION:
        if len(paired) < k:
            precision[k] = None
            continue
        by_truth = paired.sort_values(["truth", "architecture"], ascending=[False, True], kind="mergesort")
        precision[k] = len(set(paired["architecture"].head(k)) & set(by_truth["architecture"].head(k))) / k
    selected = selected_truth = regret = None
    if len(ranked):
        selected = str(ranked["architecture"].iloc[0])
        value = truth.get(selected, math.nan)
        if math.isnan(value):
            notes.append(f"the selected architecture {selected} has no ground truth")
        else:
            selected_truth = float(value)
            regret = float(y.max()) - selected_truth
    repeat_rho: list[float] = []
    if repeats is not None and len(repeats):
        for _, rep in repeats.groupby("repeat", sort=True):
            joined = rep.merge(paired[["architecture", "truth"]], on="architecture")
            if len(joined) >= MIN_PAIRS:
                r = spearman(joined["score"], joined["truth"])
                if math.isfinite(r):
                    repeat_rho.append(r)
    return ProxyStats(
        proxy=proxy,
        architectures=len(ranked),
        with_truth=len(paired),
        spearman=rho,
        spearman_ci=rho_ci,
        kendall=tau,
        kendall_ci=tau_ci,
        top_spearman=top_spearman,
        precision=precision,
        selected=selected,
        selected_truth=selected_truth,
        regret=regret,
        repeat_spearman=tuple(repeat_rho),
        notes=tuple(notes),
        top_spearman_ci={k: top_ci[k] for k in TOP_K_SPEARMAN},
        precision_ci={k: precision_ci[k] for k in TOP_K_PRECISION},
    )


def noise_ceiling(repeats: pd.DataFrame) -> Ceiling:
    """The ground truth's own noise (columns ``architecture``, ``repeat``, ``truth``: one row per trained
    network): the mean Spearman between every pair of its repeats, and from it the ceiling, the Spearman a
    noise-free proxy would reach against the mean of the repeats. With single-repeat reliability r and R
    repeats, the mean's reliability is R r / (1 + (R - 1) r) (Spearman-Brown), and a perfect ranking
    correlates with a measurement of reliability q at about sqrt(q)."""
    wide = repeats.pivot_table(index="architecture", columns="repeat", values="truth", aggfunc="first").dropna()
    n, r_count = wide.shape
    if r_count < 2:
        return Ceiling(
            n, r_count, None, notes=("the ground truth has one repeat: train it with 2+ (`nasproxy search --repeats`)",)
        )
    if n < MIN_PAIRS:
        return Ceiling(n, r_count, None, notes=(f"only {n} architectures have every repeat",))
    pairs = tuple(spearman(wide[a], wide[b]) for a, b in itertools.combinations(wide.columns, 2))
    pairs = tuple(p for p in pairs if math.isfinite(p))
    if not pairs:
        return Ceiling(n, r_count, None, notes=("the ground truth's repeats are constant",))
    mean = float(np.mean(pairs))
    top10 = top10_ceiling = None
    if n >= 10:
        heads = []
        for a, b in itertools.permutations(wide.columns, 2):
            head = wide.sort_values([a], ascending=False, kind="mergesort").head(10)
            heads.append(spearman(head[a], head[b]))
        heads = [h for h in heads if math.isfinite(h)]
        if heads:
            top10 = float(np.mean(heads))
            top10_ceiling = _spearman_brown_ceiling(top10, r_count)
    return Ceiling(n, r_count, mean, pairs, _spearman_brown_ceiling(mean, r_count), (), top10, top10_ceiling)


def _spearman_brown_ceiling(single: float, repeats: int) -> float:
    reliability = repeats * single / (1 + (repeats - 1) * single) if single > 0 else 0.0
    return math.sqrt(max(0.0, min(1.0, reliability)))


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


PREFERENCE_COLUMNS = ["proxy", "axis", "value", "architectures", "proxy_rank", "truth_rank", "difference"]


def design_preferences(scores: pd.DataFrame, specs: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """How each proxy rates each value of each design axis, against the ground truth on the same
    architectures (those the proxy scored that have a truth).

    ``scores``: ``architecture``, ``proxy``, ``score``, ``truth``; ``specs``: architecture -> its design
    choices. One row per proxy, axis and value: the mean percentile rank (1 = ranked first, near 0 = last) of
    the architectures with that value under the proxy and under the truth, and their difference: positive
    where the proxy rates the value above what the truth does. Axes with one value among those architectures
    are left out."""
    rows = []
    for proxy, group in scores.dropna(subset=["score", "truth"]).groupby("proxy", sort=False):
        group = group[group["architecture"].isin(specs.keys())]
        if len(group) < MIN_PAIRS:
            continue
        proxy_rank = group["score"].rank(pct=True)
        truth_rank = group["truth"].rank(pct=True)
        choices = pd.DataFrame([dict(specs[a]) for a in group["architecture"]], index=group.index)
        for axis in choices.columns:
            column = choices[axis]
            values = sorted(set(column), key=_value_order)
            if len(values) < 2:
                continue
            for value in values:
                index = column.index[column == value]
                p, t = proxy_rank[index].mean(), truth_rank[index].mean()
                rows.append([proxy, axis, str(value), len(index), p, t, p - t])
    return pd.DataFrame(rows, columns=PREFERENCE_COLUMNS)


def _value_order(value) -> tuple:
    return (0, float(value), "") if isinstance(value, (int, float)) else (1, 0.0, str(value))


def top_k_intervals(
    score, truth, k: int, *, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[Interval | None, Interval | None]:
    """Percentile bootstrap intervals of (top-k Spearman, P@k) over architectures. Each resample draws the
    architectures with replacement and selects the proxy's top k (and, for P@k, the truth's top k) inside it
    again, so the interval carries the noise of which architectures make the top k, not only of how the
    chosen k are ranked. A drawn architecture counts once per draw; ties keep the resample's order. Resamples
    with an undefined correlation (constant scores or truth among the k) are left out."""
    score, truth = np.asarray(score, float), np.asarray(truth, float)
    n = len(score)
    if n < k:
        return None, None
    idx = resample_indices(n, resamples, seed)
    bs, bt = score[idx], truth[idx]
    rho = top_k_spearman_rows(bs, bt, k)
    by_score = np.argsort(-bs, axis=1, kind="stable")[:, :k]
    by_truth = np.argsort(-bt, axis=1, kind="stable")[:, :k]
    chosen = np.zeros((resamples, n), bool)
    best = np.zeros((resamples, n), bool)
    np.put_along_axis(chosen, by_score, True, 1)
    np.put_along_axis(best, by_truth, True, 1)
    precision = (chosen & best).sum(axis=1) / k
    return percentile_interval(rho, resamples, level), percentile_interval(precision, resamples, level)


def top_k_spearman_rows(score: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """Row-wise Spearman over each row's top k by ``score`` ([B, n] arrays; ties keep the row's order)."""
    head = np.argsort(-score, axis=1, kind="stable")[:, :k]
    return _spearman_rows(np.take_along_axis(score, head, 1), np.take_along_axis(truth, head, 1))
