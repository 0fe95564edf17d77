"""Two curves a NAS user plans by: what a search gets after training the proxy's top k on the whole data
(regret against k), and how each proxy's ranking quality moves as the ground truth trains longer (ρ against
the truth's epochs, from a ground truth scored at several epochs within one run)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nasproxy.report._compare import verdict
from nasproxy.report._stats import (
    MIN_PAIRS,
    _spearman_rows,
    interval_columns,
    percentile_interval,
    resample_indices,
    spearman,
    top_k_intervals,
    top_k_spearman_rows,
)

REGRET_KS = tuple(range(1, 11))
REGRET_COLUMNS = ["proxy", "k", "architectures", "regret", "regret_ci_low", "regret_ci_high"]
SERIES_COLUMNS = [
    "proxy",
    "truth_epochs",
    "architectures",
    "spearman",
    "spearman_ci_low",
    "spearman_ci_high",
    "top10_spearman",
    "top10_spearman_ci_low",
    "top10_spearman_ci_high",
    "change_to_end",
    "change_to_end_ci_low",
    "change_to_end_ci_high",
    "trend",
]
TRENDS = {"better": "rises", "worse": "falls", "level": "holds"}


def regret_after_top_k(scores: pd.DataFrame, *, resamples: int = 1000, seed: int = 0, level: float = 0.95):
    """Per proxy and k = 1 ... 10: train the proxy's top k architectures on the whole data and keep the best;
    the regret is the best ground truth among the architectures the proxy scored that have one, minus the
    best of those k (accuracy, 0 ... 1). Intervals: percentile bootstrap over architectures, the top k
    re-selected in every resample. ``scores``: ``architecture``, ``proxy``, ``score``, ``truth``."""
    rows = []
    alpha = (1 - level) / 2
    for proxy, group in scores.dropna(subset=["score", "truth"]).groupby("proxy", sort=False):
        group = group.sort_values(["score", "architecture"], ascending=[False, True], kind="mergesort")
        s, t = group["score"].to_numpy(float), group["truth"].to_numpy(float)
        n = len(s)
        if n < MIN_PAIRS:
            continue
        point = t.max() - np.maximum.accumulate(t)
        idx = resample_indices(n, resamples, seed)
        bs, bt = s[idx], t[idx]
        ordered = np.take_along_axis(bt, np.argsort(-bs, axis=1, kind="stable"), 1)
        boot = bt.max(axis=1, keepdims=True) - np.maximum.accumulate(ordered, axis=1)
        for k in REGRET_KS:
            if k > n:
                break
            low, high = np.quantile(boot[:, k - 1], [alpha, 1 - alpha])
            rows.append([proxy, k, n, float(point[k - 1]), float(low), float(high)])
    return pd.DataFrame(rows, columns=REGRET_COLUMNS)


def rho_across_truth_epochs(
    scores: pd.DataFrame,
    truths: dict[int, dict[str, float]],
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Each proxy's Spearman (and top-10 Spearman) against the ground truth as it stood after each number of
    epochs in ``truths`` (epochs -> architecture -> mean accuracy), with bootstrap intervals, on the
    architectures that have every epoch's truth. ``change_to_end`` is the proxy's ρ against the longest truth
    minus its ρ against this one, with a paired interval (one resample of architectures for both truths), and
    ``trend`` reads it: the proxy's ρ rises, falls or holds from these epochs to the end, "rises" or "falls"
    only where the interval excludes 0. ``scores``: ``architecture``, ``proxy``, ``score``."""
    common = set.intersection(*(set(v) for v in truths.values())) if truths else set()
    rows = []
    for proxy, group in scores.dropna(subset=["score"]).groupby("proxy", sort=False):
        group = group[group["architecture"].isin(common)].sort_values("architecture")
        if len(group) < MIN_PAIRS:
            continue
        s = group["score"].to_numpy(float)
        by_epochs = {e: group["architecture"].map(truths[e]).to_numpy(float) for e in sorted(truths)}
        end = by_epochs[max(by_epochs)]
        rho_end = spearman(s, end)
        # one set of resamples serves each truth's ρ interval and, paired, its change to the end
        idx = resample_indices(len(s), resamples, seed)
        resampled = {e: _spearman_rows(s[idx], t[idx]) for e, t in by_epochs.items()}
        for epochs, t in by_epochs.items():
            rho = spearman(s, t)
            rho_ci = percentile_interval(resampled[epochs], resamples, level) if np.isfinite(rho) else None
            top = float(top_k_spearman_rows(s[None], t[None], 10)[0]) if len(s) >= 10 else np.nan
            top_ci = top_k_intervals(s, t, 10, resamples=resamples, seed=seed)[0] if np.isfinite(top) else None
            change = change_ci = None
            if t is not end and np.isfinite(rho):
                change = rho_end - rho
                diffs = resampled[max(by_epochs)] - resampled[epochs]
                change_ci = percentile_interval(diffs, resamples, level, estimate=change)
            rows.append(
                {
                    "proxy": proxy,
                    "truth_epochs": epochs,
                    "architectures": len(s),
                    "spearman": rho,
                    **interval_columns("spearman", rho_ci),
                    "top10_spearman": top if np.isfinite(top) else None,
                    **interval_columns("top10_spearman", top_ci),
                    "change_to_end": change,
                    **interval_columns("change_to_end", change_ci),
                    "trend": TRENDS.get(verdict(change_ci), ""),
                }
            )
    return pd.DataFrame(rows, columns=SERIES_COLUMNS)


def truth_at_epochs(trials: pd.DataFrame, final_epochs: int, metric: str) -> dict[int, dict[str, float]]:
    """Epochs -> architecture -> mean accuracy over the repeats, from a ground truth's trials that recorded
    scores at intermediate epochs (``val_accs_at``/``test_accs_at``), and at the end (``final_epochs``)."""
    at, final = ("test_accs_at", "test_accs") if metric == "test" else ("val_accs_at", "val_accs")
    result: dict[int, dict[str, float]] = {}
    for arch, series, last in zip(trials["architecture"], trials.get(at, [None] * len(trials)), trials[final]):
        if not isinstance(series, dict) or not last:
            continue
        for epoch, accs in series.items():
            if accs and all(a == a for a in accs):
                result.setdefault(int(epoch), {})[arch] = float(np.mean(accs))
        result.setdefault(int(final_epochs), {})[arch] = float(np.mean(last))
    return result


def trend_lines(series: pd.DataFrame | None) -> list[str]:
    """For a terminal: which proxies' ρ rises, falls or holds from the shortest ground truth to the longest,
    each with its change and paired interval."""
    if series is None or series.empty:
        return []
    first, last = series["truth_epochs"].min(), series["truth_epochs"].max()
    rows = series[(series["truth_epochs"] == first) & (series["trend"] != "")]
    lines = []
    for trend in ("falls", "holds", "rises"):
        chosen = rows[rows["trend"] == trend].sort_values("change_to_end", kind="mergesort")
        if chosen.empty:
            continue
        listed = ", ".join(
            f"{r.proxy} {r.change_to_end:+.2f} [{r.change_to_end_ci_low:+.2f}, {r.change_to_end_ci_high:+.2f}]"
            for r in chosen.itertuples()
        )
        lines.append(f"ρ against the ground truth from {first} to {last} epochs {trend}: {listed}")
    return lines
