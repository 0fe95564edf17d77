"""Write a report's folder: table.csv, table.md, report.json, the figures (PNG and PDF) and a README. Every
file is written atomically and depends only on the report, so re-running gives byte-identical files."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from nasproxy._artifact import atomic_write_text
from nasproxy.report import _plots
from nasproxy.report._build import Report
from nasproxy.report._compare import comparisons_frame

TOP_K_METHOD = (
    "Top-k ρ and P@k: each resample draws the architectures with replacement and re-selects the proxy's top k "
    "(and the truth's, for P@k) inside it."
)
FIGURES = {
    "scatter": "proxy score against ground truth, one panel per proxy, top 10 highlighted (the paper's Figure F5)",
    "correlations": "Spearman and Kendall of every proxy with 95 % intervals; the ceiling as a dashed line",
    "cost": "Spearman against total cost in seconds (log scale), one point per proxy",
    "ranks": "proxy rank against ground-truth rank, one panel per proxy",
    "preferences": "per design axis, how far above or below the ground truth each proxy ranks each value",
    "regret": "regret after training each proxy's top k on the whole data and keeping the best, k = 1 ... 10",
    "truth-epochs": "each proxy's ρ and top-10 ρ against the ground truth after each of its scored epochs",
}


def write_report(report: Report, out: str | Path, *, readme: bool = True) -> list[Path]:
    """Write every file of ``report`` into the folder ``out``; returns the paths written. ``readme=False``
    leaves out README.md, for a folder whose README is an experiment's own (table.md has the ground truth,
    ceiling and interval lines too)."""
    out = Path(out)
    written = []
    csv = report.table.to_csv(index=False, float_format="%.6g", lineterminator="\n")
    preferences = report.preferences.to_csv(index=False, float_format="%.6g", lineterminator="\n")
    comparisons = comparisons_frame(list(report.comparisons))
    extra = []
    if report.regret is not None:
        extra.append(("regret.csv", report.regret.to_csv(index=False, float_format="%.6g", lineterminator="\n")))
    if report.series is not None and len(report.series):
        series = report.series.to_csv(index=False, float_format="%.6g", lineterminator="\n")
        extra.append(("truth-epochs.csv", series))
    for name, text in (
        *extra,
        ("table.csv", csv),
        ("preferences.csv", preferences),
        ("comparisons.csv", comparisons.to_csv(index=False, float_format="%.6g", lineterminator="\n")),
        ("table.md", table_markdown(report)),
        ("report.json", json.dumps(report_json(report), indent=2, sort_keys=True) + "\n"),
    ):
        atomic_write_text(out / name, text)
        written.append(out / name)
    for name, fig in figures(report).items():
        for suffix in ("png", "pdf"):
            written.append(_save(fig, out / f"{name}.{suffix}"))
        import matplotlib.pyplot as plt

        plt.close(fig)
    if readme:
        atomic_write_text(out / "README.md", readme_text(report))
        written.append(out / "README.md")
    return written


def figures(report: Report) -> dict[str, Any]:
    """The report's figures (matplotlib Figures), by file stem; ``preferences`` only where the studies
    recorded design choices."""
    labels = list(report.table["proxy"])
    result = {}
    for name, draw in (("scatter", _plots.plot_scatter), ("ranks", _plots.plot_ranks)):
        fig, axes = _plots.grid(len(labels))
        for ax, label in zip(axes, labels):
            rows = report.scores[report.scores["proxy"] == label]
            if name == "scatter":
                draw(rows, report.stats[label], truth_label=f"{report.truth.metric}", ax=ax)
            else:
                draw(rows, report.stats[label], ax=ax)
        fig.tight_layout()
        result[name] = fig
    for name, draw, size in (
        ("correlations", _plots.plot_correlations, (7, 0.45 * len(labels) + 1.5)),
        ("cost", _plots.plot_cost, (6.5, 4.5)),
    ):
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=size)
        draw(report.table, report.truth.ceiling, ax=fig.add_subplot())
        fig.tight_layout()
        result[name] = fig
    import matplotlib.pyplot as plt

    if report.regret is not None and len(report.regret):
        fig = plt.figure(figsize=(7, 4.5))
        ax = _plots.plot_regret(report.regret, labels, legend=False, ax=fig.add_subplot())
        fig.tight_layout()
        _plots.legend_beside(fig, ax)
        result["regret"] = fig
    if report.series is not None and len(report.series):
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
        _plots.plot_truth_epochs(report.series, labels, legend=False, ax=left)
        _plots.plot_truth_epochs(report.series, labels, measure="top10_spearman", legend=False, ax=right)
        fig.tight_layout()
        _plots.legend_beside(fig, left)
        result["truth-epochs"] = fig
    axes = list(dict.fromkeys(report.preferences["axis"]))
    if axes:
        fig, panels = _plots.grid(
            len(axes), width=2.2 + 0.5 * _widest_axis(report.preferences), height=0.3 * len(labels) + 1.2
        )
        for ax, axis in zip(panels, axes):
            _plots.plot_preferences(report.preferences, axis, labels, ax=ax)
        fig.tight_layout()
        result["preferences"] = fig
    return result


def figures_drawn(report: Report) -> set[str]:
    """The stems of the figures :func:`figures` draws for ``report`` (without drawing them)."""
    drawn = {"scatter", "ranks", "correlations", "cost"}
    if len(report.preferences):
        drawn.add("preferences")
    if report.regret is not None and len(report.regret):
        drawn.add("regret")
    if report.series is not None and len(report.series):
        drawn.add("truth-epochs")
    return drawn


def _widest_axis(preferences: pd.DataFrame) -> int:
    return int(preferences.groupby("axis")["value"].nunique().max())


def _save(fig, path: Path) -> Path:
    from nasproxy._viz import save_figure

    return save_figure(fig, path)


def _num(value, digits: int = 2, *, percent: bool = False, signed: bool = True) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if percent:
        return f"{100 * value:.{digits}f}"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _ci(row, name: str, *, signed: bool = True) -> str:
    if pd.isna(row[name]):
        return "—"
    low, high = row[f"{name}_ci_low"], row[f"{name}_ci_high"]
    spec = "+.2f" if signed else ".2f"
    interval = "" if pd.isna(low) else f" [{low:{spec}}, {high:{spec}}]"
    return f"{row[name]:{spec}}{interval}"


def table_markdown(report: Report) -> str:
    """The paper's Table 4 shape (selected architecture's accuracy, correlations, time, images) plus the
    intervals, top-k and regret, readable on GitHub."""
    lines = [
        f"# How well each proxy ranks architectures: {report.dataset} / {report.space}",
        "",
        *_restriction_lines(report),
        "| proxy | Spearman ρ [95 % CI] | Kendall τ [95 % CI] | top-10 ρ [95 % CI] | top-5 ρ | top-20 ρ | P@5 "
        "| P@10 [95 % CI] | selected: truth acc. (%) | regret (points) | time (s) | images | archs (with truth) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in report.table.iterrows():
        seconds = "—" if pd.isna(r["seconds"]) else f"{r['seconds']:,.0f}"
        images = "—" if pd.isna(r["images"]) else f"{int(r['images']):,}"
        lines.append(
            f"| {r['proxy']} | {_ci(r, 'spearman')} | {_ci(r, 'kendall')} | {_ci(r, 'top10_spearman')} "
            f"| {_num(r['top5_spearman'])} | {_num(r['top20_spearman'])} | {_num(r['precision_at_5'], signed=False)} "
            f"| {_ci(r, 'precision_at_10', signed=False)} | {_num(r['selected_truth'], percent=True)} "
            f"| {_num(r['regret'], percent=True)} | {seconds} | {images} "
            f"| {int(r['architectures'])} ({int(r['with_truth'])}) |"
        )
    lines += ["", *_comparison_lines(report), *_truth_lines(report), ""]
    notes = [(r["proxy"], r["notes"]) for _, r in report.table.iterrows() if isinstance(r["notes"], str) and r["notes"]]
    if notes:
        lines += ["Notes:", ""] + [f"- {proxy}: {note}" for proxy, note in notes] + [""]
    return "\n".join(lines)


def _restriction_lines(report: Report) -> list[str]:
    if report.architectures is None:
        return []
    return [f"Only the {len(report.architectures)} architectures of the list the report was given (report.json).", ""]


def _comparison_lines(report: Report) -> list[str]:
    """The reference proxy against each other one, paired (comparisons.csv), as a small table."""
    if not report.comparisons:
        return []
    ref = report.comparisons[0].reference
    lines = [
        f"Paired: {ref} against each proxy on the architectures both scored that have a ground truth; Δρ = "
        f"ρ({ref}) − ρ(proxy) with its 95 % paired bootstrap interval (one resample of architectures scores "
        f"both), the share of resamples in which {ref} ranks better, and the verdict: better or worse only "
        "where the interval excludes 0; the same for top-10 ρ, each proxy's top 10 re-selected in every resample.",
        "",
        "| proxy | archs | ρ(" + ref + ") | ρ(proxy) | Δρ [95 % CI] | share better | verdict "
        "| Δ top-10 ρ [95 % CI] | top-10 verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in report.comparisons:
        delta = _num(c.difference)
        if c.interval is not None:
            delta += f" [{c.interval.low:+.2f}, {c.interval.high:+.2f}]"
        top = _num(c.top10_difference)
        if c.top10_interval is not None:
            top += f" [{c.top10_interval.low:+.2f}, {c.top10_interval.high:+.2f}]"
        share = "—" if c.share_better is None else f"{c.share_better:.3f}"
        lines.append(
            f"| {c.proxy} | {c.architectures} | {_num(c.spearman_reference)} | {_num(c.spearman_proxy)} "
            f"| {delta if c.notes == '' else c.notes} | {share} | {c.verdict or '—'} | {top} "
            f"| {c.top10_verdict or '—'} |"
        )
    return [*lines, ""]


def _truth_lines(report: Report) -> list[str]:
    t = report.truth
    c = t.ceiling
    lines = [
        f"Ground truth: study `{t.study}`, {t.architectures} architectures, {_plural(t.epochs, 'epoch')} x {t.repeats} "
        f"networks on the whole training set, ranked by mean {t.metric} accuracy; {t.seconds:,.0f} s on "
        f"{', '.join(t.devices) or 'an unrecorded device'}.",
        "",
    ]
    if c.repeat_vs_repeat is None:
        lines.append(f"Ceiling: not measurable ({'; '.join(c.notes)}).")
    else:
        pairs = "the one pair" if len(c.pairs) == 1 else f"mean of the {len(c.pairs)} pairs"
        lines.append(
            f"Ceiling: one repeat of the ground truth ranks the {c.architectures} architectures like another with "
            f"Spearman {c.repeat_vs_repeat:.2f} ({pairs} of its {c.repeats} repeats); a "
            f"noise-free proxy would reach about ρ = {c.ceiling:.2f} against their mean, the most any row "
            "above can show."
        )
        if c.top10_repeat_vs_repeat is not None:
            lines.append(
                f"Over a top 10 (the paper's measure), one repeat's 10 best are ranked by another with Spearman "
                f"{c.top10_repeat_vs_repeat:.2f} (mean over ordered pairs of repeats); Spearman-Brown for the mean "
                f"of {c.repeats}: top-10 ceiling about {c.top10_ceiling:.2f}."
            )
    if t.network_spread is not None:
        lines.append(
            f"A network's {t.metric} accuracy varies between its repeats by {100 * t.network_spread:.2f} points "
            "(median over architectures of the standard deviation over repeats): a regret below that is noise."
        )
    conv = t.convergence
    if conv is not None and conv.spearman is not None:
        ci = f" [{conv.spearman_ci.low:.2f}, {conv.spearman_ci.high:.2f}]" if conv.spearman_ci else ""
        lines += [
            "",
            f"Convergence: the ground truth's validation ranking after {conv.half_epochs} epochs against after "
            f"{t.epochs}: Spearman {conv.spearman:.2f}{ci} over {conv.architectures} architectures.",
        ]
        if conv.settled is not None:
            diff = f"{conv.versus_repeats:+.2f} [{conv.versus_repeats_ci.low:+.2f}, {conv.versus_repeats_ci.high:+.2f}]"
            lines[-1] += (
                f" Its networks agree with each other at {conv.repeat_vs_repeat:.2f} after {t.epochs}; the "
                f"difference, paired over architectures, is {diff}: "
                + (
                    "the ranking has settled within the ground truth's own noise."
                    if conv.settled
                    else f"the ranking was still changing; a ground truth of {2 * t.epochs} epochs would rank "
                    "more like a trained one."
                )
            )
    lines += [
        "",
        f"Intervals: 95 % percentile bootstrap over architectures, B = {report.resamples} resamples, seed "
        f"{report.seed}. {TOP_K_METHOD} Correlations are signed: a negative ρ ranks architectures in reverse.",
    ]
    return lines


def _plural(count, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def report_json(report: Report) -> dict[str, Any]:
    return _clean(
        {
            "dataset": report.dataset,
            "space": report.space,
            "bootstrap": {
                "resamples": report.resamples,
                "seed": report.seed,
                "level": 0.95,
                "top_k_method": TOP_K_METHOD,
            },
            "truth": dataclasses.asdict(report.truth),
            "studies": list(report.studies),
            "table": report.table.to_dict("records"),
            "comparisons": comparisons_frame(list(report.comparisons)).to_dict("records"),
            "regret": [] if report.regret is None else report.regret.to_dict("records"),
            "truth_epochs": [] if report.series is None else report.series.to_dict("records"),
            **({} if report.architectures is None else {"architectures": list(report.architectures)}),
        }
    )


def _clean(obj):
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float):
        return None if math.isnan(obj) else round(obj, 6)
    if hasattr(obj, "item"):  # numpy scalars
        return _clean(obj.item())
    return obj


def readme_text(report: Report) -> str:
    studies = "\n".join(f"- {s['label']}: study `{s['study']}` in `{s['source']}`" for s in report.studies)
    drawn = [name for name in FIGURES if name in figures_drawn(report)]
    figs = "\n".join(f"- `{name}.png` / `.pdf`: {FIGURES[name]}" for name in drawn)
    return "\n".join(
        [
            f"# nasproxy report: {report.dataset} / {report.space}",
            "",
            "Written by `nasproxy report`; re-running it over the same studies gives these files byte for byte.",
            "",
            "- `table.csv`: one row per proxy (column names are stable for scripts); `table.md`: the same, readable",
            "- `report.json`: the table, the ground truth, its ceiling and convergence, the bootstrap settings",
            "- `comparisons.csv`: one proxy (`ours` where there is one) against each other proxy on the same "
            "architectures: the difference of their Spearman correlations with a paired bootstrap interval",
            "- `regret.csv`: per proxy and k = 1 ... 10, the accuracy still missing to the best architecture with a "
            "ground truth after training the proxy's top k on the whole data and keeping the best, with a bootstrap "
            "interval (the top k re-selected in every resample)",
            "- `truth-epochs.csv` (where the ground truth was scored at several epochs within its runs): each "
            "proxy's ρ and top-10 ρ against the truth after each of those epochs, with bootstrap intervals, and "
            "`trend`: whether the proxy's ρ rises, falls or holds from those epochs to the end (`change_to_end` "
            "with its paired interval; rises or falls only where it excludes 0)",
            "- `preferences.csv`: for each proxy, design axis and value, the mean percentile rank (1 = first) of "
            "the architectures with that value under the proxy and under the ground truth, on the same "
            "architectures, and their difference (positive: the proxy rates the value higher than the truth does)",
            figs,
            "",
            "## What it rests on",
            "",
            studies,
            "",
            *_truth_lines(report),
            "",
            "## Reading it",
            "",
            "Spearman ρ and Kendall τ compare the proxy's ranking of the architectures with the ground truth's "
            "over every architecture that has both; `top10_spearman` is the paper's protocol (ρ over the "
            "proxy's 10 best architectures), `precision_at_k` the share of the truth's top k that the proxy "
            "also puts in its top k, `regret` the accuracy lost by taking the proxy's first choice instead of "
            "the best architecture it scored. The ceiling is the ground truth's own noise: no proxy can be "
            "expected to correlate with it better, so a proxy near the ceiling is as good as the ground truth "
            "allows.",
            "",
        ]
    )


def comparisons_text(report: Report) -> list[str]:
    """One line per paired comparison, for a terminal."""
    lines = []
    for c in report.comparisons:
        if c.interval is None:
            lines.append(f"{c.reference} vs {c.proxy}: {c.notes or 'no interval'}")
            continue
        lines.append(
            f"{c.reference} vs {c.proxy}: Δρ {c.difference:+.2f} [{c.interval.low:+.2f}, {c.interval.high:+.2f}] "
            f"over {c.architectures} architectures: {c.verdict} ({c.reference} better in "
            f"{100 * c.share_better:.1f} % of resamples)"
        )
    return lines


def table_text(table: pd.DataFrame) -> str:
    """The table as fixed-width text for a terminal: proxy, Spearman with its interval, Kendall, top-10, size, cost."""

    def cell(v, spec="+.2f"):
        return "—" if v is None or v != v else format(v, spec)

    width = max([len("proxy"), *(len(p) for p in table["proxy"])])
    lines = [f"{'proxy':<{width}}  {'spearman [95% CI]':<24}{'kendall':>9}{'top10':>8}{'archs':>7}{'seconds':>10}"]
    for _, r in table.iterrows():
        ci = f"[{cell(r['spearman_ci_low'])}, {cell(r['spearman_ci_high'])}]"
        lines.append(
            f"{r['proxy']:<{width}}  {cell(r['spearman']):>6} {ci:<17}{cell(r['kendall']):>9}"
            f"{cell(r['top10_spearman']):>8}{r['architectures']:>7}{cell(r['seconds'], ',.0f'):>10}"
        )
    return "\n".join(lines)
