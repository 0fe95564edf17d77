"""Does one proxy rank architectures better than another? Two proxies' correlations with the ground truth
each carry a wide interval, but both are measured on the same architectures, so their errors are correlated:
the paired bootstrap (one resample of architectures scores both proxies) measures the difference itself,
often far more tightly than the two separate intervals suggest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nasproxy.report._stats import (
    MIN_PAIRS,
    Interval,
    _spearman_rows,
    interval_columns,
    percentile_interval,
    resample_indices,
    spearman,
    top_k_spearman_rows,
)

TOP_K = 10  # the paper's measure: Spearman over the proxy's own top 10

COMPARISON_COLUMNS = [
    "reference",
    "proxy",
    "architectures",
    "spearman_reference",
    "spearman_proxy",
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "share_better",
    "verdict",
    "top10_reference",
    "top10_proxy",
    "top10_difference",
    "top10_difference_ci_low",
    "top10_difference_ci_high",
    "top10_verdict",
    "notes",
]


@dataclass(frozen=True)
class Comparison:
    """``reference`` against ``proxy`` on the architectures both scored that have a ground truth."""

    reference: str
    proxy: str
    architectures: int
    spearman_reference: float | None
    spearman_proxy: float | None
    difference: float | None  # spearman_reference - spearman_proxy
    interval: Interval | None  # 95 % paired percentile bootstrap of the difference
    share_better: float | None  # share of resamples in which the reference's Spearman is the higher
    notes: str = ""
    # the same for top-10 Spearman, each proxy's top 10 re-selected inside every resample
    top10_reference: float | None = None
    top10_proxy: float | None = None
    top10_interval: Interval | None = None

    @property
    def verdict(self) -> str:
        return verdict(self.interval)

    @property
    def top10_verdict(self) -> str:
        return verdict(self.top10_interval)

    @property
    def top10_difference(self) -> float | None:
        if self.top10_reference is None or self.top10_proxy is None:
            return None
        return self.top10_reference - self.top10_proxy


def verdict(interval: Interval | None) -> str:
    """The reference against the other proxy, only as far as the paired 95 % interval carries: better or worse
    where it excludes 0, level where it holds 0, empty where there is no interval."""
    if interval is None:
        return ""
    if interval.low > 0:
        return "better"
    if interval.high < 0:
        return "worse"
    return "level"


def paired_comparisons(
    frame: pd.DataFrame,
    reference: str,
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    order: list[str] | None = None,
) -> list[Comparison]:
    """``reference`` against every other proxy of ``frame`` (columns ``architecture``, ``proxy``, ``score``,
    ``truth``), in ``order`` (default: the order the proxies first appear). Resamples in which either
    correlation is undefined are left out."""
    scores = frame.dropna(subset=["score"]).pivot_table(
        index="architecture", columns="proxy", values="score", aggfunc="first"
    )
    truth = frame.groupby("architecture")["truth"].first()
    if reference not in scores.columns:
        raise ValueError(f"no scores of the reference proxy {reference!r}")
    result = []
    for proxy in order if order is not None else dict.fromkeys(frame["proxy"]):
        if proxy == reference:
            continue
        both = scores[[reference, proxy]].join(truth).dropna() if proxy in scores.columns else scores.iloc[:0]
        result.append(_compare(reference, proxy, both, resamples=resamples, seed=seed, level=level))
    return result


def _compare(reference: str, proxy: str, both: pd.DataFrame, *, resamples, seed, level) -> Comparison:
    n = len(both)
    if n < MIN_PAIRS:
        note = f"only {n} architectures scored by both have a ground truth (a comparison needs {MIN_PAIRS})"
        return Comparison(reference, proxy, n, None, None, None, None, None, note)
    a, b, t = (both[c].to_numpy(float) for c in (reference, proxy, "truth"))
    rho_a, rho_b = spearman(a, t), spearman(b, t)
    if not (np.isfinite(rho_a) and np.isfinite(rho_b)):
        return Comparison(reference, proxy, n, None, None, None, None, None, "a constant score or ground truth")
    idx = resample_indices(n, resamples, seed)
    diffs = _spearman_rows(a[idx], t[idx]) - _spearman_rows(b[idx], t[idx])
    interval = percentile_interval(diffs, resamples, level, estimate=rho_a - rho_b)
    share = float(np.mean(diffs[np.isfinite(diffs)] > 0)) if interval is not None else None
    top_a = top_b = top_interval = None
    if n >= TOP_K:
        top_a = float(top_k_spearman_rows(a[None], t[None], TOP_K)[0])
        top_b = float(top_k_spearman_rows(b[None], t[None], TOP_K)[0])
        if np.isfinite(top_a) and np.isfinite(top_b):
            top_diffs = top_k_spearman_rows(a[idx], t[idx], TOP_K) - top_k_spearman_rows(b[idx], t[idx], TOP_K)
            top_interval = percentile_interval(top_diffs, resamples, level, estimate=top_a - top_b)
        top_a = top_a if np.isfinite(top_a) else None
        top_b = top_b if np.isfinite(top_b) else None
    return Comparison(reference, proxy, n, rho_a, rho_b, rho_a - rho_b, interval, share, "", top_a, top_b, top_interval)


def comparisons_frame(comparisons: list[Comparison]) -> pd.DataFrame:
    rows = [
        {
            "reference": c.reference,
            "proxy": c.proxy,
            "architectures": c.architectures,
            "spearman_reference": c.spearman_reference,
            "spearman_proxy": c.spearman_proxy,
            "difference": c.difference,
            **interval_columns("difference", c.interval),
            "share_better": c.share_better,
            "verdict": c.verdict,
            "top10_reference": c.top10_reference,
            "top10_proxy": c.top10_proxy,
            "top10_difference": c.top10_difference,
            **interval_columns("top10_difference", c.top10_interval),
            "top10_verdict": c.top10_verdict,
            "notes": c.notes,
        }
        for c in comparisons
    ]
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
