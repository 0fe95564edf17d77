"""Has the ground truth settled? ``--proxy full`` scores each network half-way through its one run too: the
ranking half-way against the one at the end, set against how the truth's networks agree with each other."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from nasproxy.report._stats import (
    Interval,
    _spearman_rows,
    bootstrap_intervals,
    percentile_interval,
    resample_indices,
    spearman,
)


@dataclass(frozen=True)
class Convergence:
    """The ground truth at half its epochs against the ground truth at the end (validation accuracy), and
    whether that agreement is within the ground truth's own repeat noise: ``versus_repeats`` is ``spearman``
    minus ``repeat_vs_repeat`` (its networks at the end against each other), with its paired interval;
    ``settled`` unless that interval lies below 0 (None without 2+ networks)."""

    half_epochs: int
    architectures: int
    spearman: float | None
    spearman_ci: Interval | None
    repeat_vs_repeat: float | None = None
    versus_repeats: float | None = None
    versus_repeats_ci: Interval | None = None
    settled: bool | None = None


def convergence(trials: pd.DataFrame, epochs: int | None, *, resamples: int, seed: int) -> Convergence | None:
    """The ground truth's convergence from its trials (``val_accs_half``, ``val_accs``: per network); None
    where no network was scored half-way."""
    halves = [(np.nanmean(h), list(v)) for h, v in zip(trials["val_accs_half"], trials["val_accs"]) if h]
    if not halves:
        return None
    half = np.array([h for h, _ in halves], float)
    end = np.array([np.mean(v) for _, v in halves], float)
    result = Convergence(int(epochs) // 2 if epochs else 0, len(halves), None, None)
    if len(halves) < 5 or np.ptp(half) == 0 or np.ptp(end) == 0:
        return result
    ci = bootstrap_intervals(half, end, resamples=resamples, seed=seed)[0]
    result = replace(result, spearman=spearman(half, end), spearman_ci=ci)
    if len({len(v) for _, v in halves}) != 1 or len(halves[0][1]) < 2:
        return result
    networks = np.array([v for _, v in halves], float)
    agreement, diff, diff_ci = half_way_against_repeats(half, end, networks, resamples=resamples, seed=seed)
    return replace(
        result,
        repeat_vs_repeat=agreement,
        versus_repeats=diff,
        versus_repeats_ci=diff_ci,
        settled=None if diff_ci is None else bool(diff_ci.high >= 0),
    )


def half_way_against_repeats(
    half: np.ndarray, end: np.ndarray, networks: np.ndarray, *, resamples: int, seed: int, level: float = 0.95
) -> tuple[float, float, Interval | None]:
    """How the ground truth's networks at the end (``networks``: architectures x networks) agree with each
    other (mean Spearman over pairs), and its ranking half-way (``half``, the mean of its networks) against
    its ranking at the end (``end``) minus that agreement, with the paired interval of the difference (one
    resample of architectures for both). Below 0 beyond the interval: halving the training changes the
    ranking more than retraining with other seeds does."""
    pairs = [(a, b) for a in range(networks.shape[1]) for b in range(a + 1, networks.shape[1])]

    def repeats(idx: np.ndarray) -> np.ndarray:
        return np.mean([_spearman_rows(networks[idx, a], networks[idx, b]) for a, b in pairs], axis=0)

    whole = np.arange(len(half))[None]
    agreement = float(repeats(whole)[0])
    estimate = float(_spearman_rows(half[whole], end[whole])[0]) - agreement
    idx = resample_indices(len(half), resamples, seed)
    diffs = _spearman_rows(half[idx], end[idx]) - repeats(idx)
    interval = percentile_interval(diffs, resamples, level, estimate=estimate)
    return agreement, estimate, interval
