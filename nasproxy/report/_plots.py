"""The report's figures. Each function draws on ``ax`` (a new figure's axes if omitted) and returns the Axes,
as ``optuna.visualization.matplotlib`` does; saving is the caller's business."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from nasproxy.report._stats import Ceiling, ProxyStats

TOP = 10  # the proxy's top-k architectures highlighted in the scatter, the paper's protocol


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(5, 4)).add_subplot()


def _fmt(value: float | None, ci=None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:+.2f}"
    return text + (f" [{ci.low:+.2f}, {ci.high:+.2f}]" if ci is not None else "")


def plot_scatter(scores: pd.DataFrame, stats: ProxyStats, *, truth_label: str = "ground truth", ax=None):
    """Proxy score against ground truth, one point per architecture, the proxy's top 10 highlighted (the
    paper's Figure F5). ``scores``: one proxy's rows (``architecture``, ``score``, ``truth``)."""
    ax = _axes(ax)
    paired = scores.dropna(subset=["truth", "score"]).sort_values(
        ["score", "architecture"], ascending=[False, True], kind="mergesort"
    )
    top, rest = paired.head(TOP), paired.iloc[TOP:]
    if len(rest):
        ax.scatter(rest["score"], 100 * rest["truth"], s=12, color="0.55", label="other architectures")
    ax.scatter(top["score"], 100 * top["truth"], s=22, color="C3", label=f"proxy's top {TOP}")
    ax.set_xlabel(f"{stats.proxy} score")
    ax.set_ylabel(f"{truth_label} accuracy (%)")
    ax.set_title(
        f"{stats.proxy}: ρ {_fmt(stats.spearman, stats.spearman_ci)}\nτ {_fmt(stats.kendall, stats.kendall_ci)}",
        fontsize=8,
    )
    values = paired["score"]
    if len(values) and values.min() > 0 and values.max() > 100 * values.min():  # e.g. parameter counts
        ax.set_xscale("log")
    ax.legend(fontsize=6, loc="lower right")
    return ax


def plot_correlations(table: pd.DataFrame, ceiling: Ceiling | None = None, *, ax=None):
    """Every proxy's Spearman and Kendall with their 95 % bootstrap intervals; the ground truth's ceiling as
    a line."""
    ax = _axes(ax)
    y = np.arange(len(table))
    for offset, name, color in ((-0.18, "spearman", "C0"), (0.18, "kendall", "C1")):
        value = table[name].astype(float).to_numpy()
        low = table[f"{name}_ci_low"].astype(float).to_numpy()
        high = table[f"{name}_ci_high"].astype(float).to_numpy()
        # rounding can put a bootstrap bound a hair inside the estimate (a perfect ranking: all three are 1)
        err = np.clip(np.vstack([np.nan_to_num(value - low), np.nan_to_num(high - value)]), 0, None)
        ax.barh(y + offset, np.nan_to_num(value), height=0.34, color=color, label=name.capitalize())
        ax.errorbar(value, y + offset, xerr=err, fmt="none", ecolor="k", elinewidth=0.8, capsize=2)
    if ceiling is not None and ceiling.ceiling is not None:
        ax.axvline(ceiling.ceiling, color="C2", linestyle="--", label=f"ceiling ρ {ceiling.ceiling:.2f}")
    ax.axvline(0, color="k", linewidth=0.6)
    ax.set_yticks(y, table["proxy"], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(-1, 1)
    ax.set_xlabel("rank correlation with the ground truth (95 % bootstrap interval)")
    ax.legend(fontsize=7, loc="lower left")
    return ax


def plot_cost(table: pd.DataFrame, ceiling: Ceiling | None = None, *, ax=None):
    """Spearman against total cost (seconds, log scale), one point per proxy: the trade-off to pick from."""
    ax = _axes(ax)
    rows = table.dropna(subset=["spearman"])
    rows = rows[rows["seconds"] > 0]
    for _, r in rows.iterrows():
        low, high = r["spearman_ci_low"], r["spearman_ci_high"]
        err = None if pd.isna(low) else [[r["spearman"] - low], [high - r["spearman"]]]
        ax.errorbar(r["seconds"], r["spearman"], yerr=err, fmt="o", ms=4, capsize=2)
        ax.annotate(r["proxy"], (r["seconds"], r["spearman"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if ceiling is not None and ceiling.ceiling is not None:
        ax.axhline(ceiling.ceiling, color="C2", linestyle="--", label="ceiling")
        ax.legend(fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("cost (seconds, all architectures, condensation included)")
    ax.set_ylabel("Spearman ρ with the ground truth")
    ax.axhline(0, color="k", linewidth=0.6)
    return ax


def plot_ranks(scores: pd.DataFrame, stats: ProxyStats, *, ax=None):
    """The proxy's rank of each architecture against its ground-truth rank (1 = best)."""
    ax = _axes(ax)
    paired = scores.dropna(subset=["truth", "score"])
    proxy_rank = paired["score"].rank(ascending=False, method="average")
    truth_rank = paired["truth"].rank(ascending=False, method="average")
    ax.scatter(truth_rank, proxy_rank, s=10, color="C0")
    n = len(paired)
    if n:
        ax.plot([1, n], [1, n], color="0.6", linewidth=0.8)
    ax.set_xlabel("ground-truth rank")
    ax.set_ylabel(f"{stats.proxy} rank")
    ax.set_title(f"{stats.proxy}: ρ {_fmt(stats.spearman)}", fontsize=8)
    return ax


def plot_preferences(preferences: pd.DataFrame, axis: str, proxies: list[str], *, ax=None):
    """One design axis: for each proxy (rows) and value (columns), how far above (red) or below (blue) the
    ground truth the proxy ranks the architectures with that value (difference of mean percentile ranks)."""
    ax = _axes(ax)
    rows = preferences[preferences["axis"] == axis]
    values = list(dict.fromkeys(rows["value"]))
    proxies = [p for p in proxies if p in set(rows["proxy"])]
    grid_values = np.full((len(proxies), len(values)), np.nan)
    for _, r in rows.iterrows():
        if r["proxy"] in proxies:
            grid_values[proxies.index(r["proxy"]), values.index(r["value"])] = r["difference"]
    ax.imshow(grid_values, cmap="RdBu_r", vmin=-0.5, vmax=0.5, aspect="auto")
    for (i, j), value in np.ndenumerate(grid_values):
        if not np.isnan(value):
            colour = "white" if abs(value) > 0.3 else "black"
            ax.text(j, i, f"{value:+.2f}", ha="center", va="center", fontsize=6, color=colour)
    ax.set_xticks(range(len(values)), values, fontsize=7)
    ax.set_yticks(range(len(proxies)), proxies, fontsize=7)
    ax.set_title(f"{axis}: proxy rank − truth rank", fontsize=8)
    return ax


def grid(count: int, *, width: float = 3.2, height: float = 2.9):
    """A figure with one axes per panel, for the per-proxy figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, max(1, count))
    rows = max(1, math.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def legend_beside(fig, ax) -> None:
    """One legend for the whole figure, right of its panels: with 15 proxies a legend inside a panel hides
    the lines it names."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)


def plot_regret(regret: pd.DataFrame, proxies: list[str], *, legend: bool = True, ax=None):
    """What a search gets: after training each proxy's top k on the whole data and keeping the best, the
    accuracy (points) still missing to the best architecture with a ground truth, k = 1 ... 10, one line per
    proxy with its 95 % bootstrap band."""
    ax = _axes(ax)
    for i, proxy in enumerate(proxies):
        rows = regret[regret["proxy"] == proxy]
        if rows.empty:
            continue
        color = f"C{i % 10}"
        linestyle = "-" if i < 10 else "--"
        ax.plot(rows["k"], 100 * rows["regret"], marker="o", ms=3, color=color, linestyle=linestyle, label=proxy)
        ax.fill_between(rows["k"], 100 * rows["regret_ci_low"], 100 * rows["regret_ci_high"], color=color, alpha=0.08)
    ax.set_xlabel("architectures of the proxy's top k trained on the whole data")
    ax.set_ylabel("regret: accuracy points below the best")
    ax.set_xticks(range(1, 11))
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, ncol=2)
    return ax


def plot_truth_epochs(
    series: pd.DataFrame, proxies: list[str], *, measure: str = "spearman", legend: bool = True, ax=None
):
    """Each proxy's ρ (``measure``: spearman or top10_spearman) against the ground truth after each number of
    its epochs, with 95 % bootstrap bands: does the proxy's agreement rise, fall or hold as the truth trains?"""
    ax = _axes(ax)
    for i, proxy in enumerate(proxies):
        rows = series[series["proxy"] == proxy].dropna(subset=[measure])
        if rows.empty:
            continue
        color, linestyle = f"C{i % 10}", "-" if i < 10 else "--"
        ax.plot(rows["truth_epochs"], rows[measure], marker="o", ms=3, color=color, linestyle=linestyle, label=proxy)
        low, high = rows[f"{measure}_ci_low"].astype(float), rows[f"{measure}_ci_high"].astype(float)
        ax.fill_between(rows["truth_epochs"], low, high, color=color, alpha=0.08)
    ax.set_xscale("log", base=2)
    epochs = sorted(set(series["truth_epochs"]))
    ax.set_xticks(epochs, [str(e) for e in epochs])
    ax.set_xlabel("epochs of the ground truth's training")
    ax.set_ylabel("top-10 Spearman ρ" if measure == "top10_spearman" else "Spearman ρ with the ground truth")
    ax.axhline(0, color="k", linewidth=0.6)
    if not ax.get_legend_handles_labels()[0]:
        ax.set_title(f"too few architectures for {measure.replace('_', ' ')}", fontsize=8)
    elif legend:
        ax.legend(fontsize=6, ncol=2)
    return ax
