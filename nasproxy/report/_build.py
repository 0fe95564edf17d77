"""Put finished searches side by side: pick the ground truth, label each proxy by what distinguishes it,
and compute every statistic of the report's table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from nasproxy._errors import NasproxyError, setting
from nasproxy.report._compare import Comparison, paired_comparisons
from nasproxy.report._convergence import Convergence, convergence
from nasproxy.report._curves import SERIES_COLUMNS, regret_after_top_k, rho_across_truth_epochs, truth_at_epochs
from nasproxy.report._load import StudyData
from nasproxy.report._stats import (
    TOP_K_PRECISION,
    TOP_K_SPEARMAN,
    Ceiling,
    ProxyStats,
    design_preferences,
    interval_columns,
    noise_ceiling,
    rank_statistics,
)

TRUTH_PROXY = "full"
# the columns of table.csv, in order; scripts rely on these names
COLUMNS = [
    "proxy",
    "protocol",
    "architectures",
    "with_truth",
    "spearman",
    "spearman_ci_low",
    "spearman_ci_high",
    "kendall",
    "kendall_ci_low",
    "kendall_ci_high",
    "top10_spearman",
    "top10_spearman_ci_low",
    "top10_spearman_ci_high",
    "top5_spearman",
    "top20_spearman",
    "precision_at_5",
    "precision_at_10",
    "precision_at_10_ci_low",
    "precision_at_10_ci_high",
    "selected",
    "selected_truth",
    "regret",
    "seconds",
    "condense_seconds",
    "images",
    "repeats",
    "repeat_spearman_mean",
    "repeat_spearman_std",
    "study",
    "notes",
]
# protocol fields that tell two studies of one proxy apart in a label (the rest follow from these)
_LABEL_KEYS = (
    "proxy_file", "augment", "epochs", "repeats", "batch_size", "lr", "precision", "seed", "holdout", "split_seed",
)  # fmt: skip


@dataclass(frozen=True)
class TruthInfo:
    study: str
    metric: str  # test (mean test accuracy of the repeats) or validation
    architectures: int
    epochs: int | None
    repeats: int | None
    seconds: float
    devices: tuple[str, ...]
    ceiling: Ceiling
    convergence: Convergence | None
    network_spread: float | None = None  # median over architectures of the repeats' standard deviation


@dataclass(frozen=True)
class Report:
    dataset: str | None
    space: str | None
    table: pd.DataFrame  # COLUMNS, one row per proxy
    stats: dict[str, ProxyStats]  # by proxy label
    scores: pd.DataFrame  # architecture, proxy, score, truth: what the figures draw
    preferences: pd.DataFrame  # PREFERENCE_COLUMNS: the design choices each proxy over- or under-rates
    truth: TruthInfo
    studies: tuple[dict[str, Any], ...]  # label, study, source, proxy
    resamples: int
    seed: int
    comparisons: tuple[Comparison, ...] = ()  # the reference proxy against each other one, paired
    architectures: tuple[str, ...] | None = None  # the list the report was restricted to; None: every one
    regret: pd.DataFrame | None = None  # REGRET_COLUMNS: regret after training each proxy's top k
    # SERIES_COLUMNS: each proxy against the ground truth after each of its scored epochs (empty where the
    # truth was scored at the end alone)
    series: pd.DataFrame | None = None


def build_report(
    studies: Sequence[StudyData],
    *,
    truth: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
    dataset: str | None = None,
    space: str | None = None,
    versus: str | None = None,
    architectures: Sequence[str] | None = None,
) -> Report:
    """Compare every proxy study with the ground truth: the ``full`` study, or the study (or label) named
    ``truth`` (another ``full`` study, e.g. a longer ground truth, is then left out of the table); and one
    proxy with each other one on the same architectures (paired bootstrap): ``versus`` (a row label or a
    proxy name), by default ``ours`` where there is one, else the best-ranking row.

    ``architectures`` restricts every study (the ground truth too) to those ids, e.g. to an unbiased random
    sample where the ground truth also covers architectures chosen because some proxy ranked them high."""
    if resamples < 100:
        raise NasproxyError(f"the bootstrap needs at least 100 resamples for a 95 % interval, got {resamples}")
    if architectures is not None:
        architectures = tuple(dict.fromkeys(architectures))
        studies = _restricted(studies, architectures)
    truth_study = _pick_truth(studies, truth)
    # another ground truth (e.g. a longer one) is not a proxy: it is no row of the table
    proxies = [s for s in studies if s is not truth_study and s.proxy != TRUTH_PROXY]
    if not proxies:
        raise NasproxyError(f"only the ground truth ({truth_study.name}) was found: search with a proxy first")
    labels = _labels(proxies)
    truth_values, metric = _truth_values(truth_study)
    scores, repeats = [], []
    for study in proxies:
        label = labels[study.name]
        t = study.trials
        scores.append(pd.DataFrame({"architecture": t["architecture"], "proxy": label, "score": t["score"]}))
        for arch, accs in zip(t["architecture"], t["val_accs"]):
            for r, acc in enumerate(accs or []):
                repeats.append({"architecture": arch, "proxy": label, "repeat": r, "score": acc})
    frame = pd.concat(scores, ignore_index=True)
    frame["truth"] = frame["architecture"].map(truth_values)
    repeat_frame = pd.DataFrame(repeats, columns=["architecture", "proxy", "repeat", "score"])
    stats = rank_statistics(frame, resamples=resamples, seed=seed, repeats=repeat_frame, proxies=list(labels.values()))
    rows = [_row(stats[labels[s.name]], s) for s in proxies]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table = table.sort_values(
        ["spearman", "proxy"], ascending=[False, True], na_position="last", kind="mergesort"
    ).reset_index(drop=True)
    reference = _reference(versus, table)
    comparisons = ()
    if reference is not None:
        comparisons = tuple(
            paired_comparisons(frame, reference, resamples=resamples, seed=seed, order=list(table["proxy"]))
        )
    truths = truth_at_epochs(truth_study.trials, truth_study.protocol.get("epochs") or 0, metric)
    series = (
        rho_across_truth_epochs(frame, truths, resamples=resamples, seed=seed)
        if len(truths) > 1
        else pd.DataFrame(columns=SERIES_COLUMNS)
    )
    return Report(
        dataset=dataset or truth_study.dataset,
        space=space or truth_study.space,
        table=table,
        stats=stats,
        scores=frame,
        preferences=design_preferences(frame, _specs(studies)),
        truth=_truth_info(truth_study, metric, resamples, seed),
        studies=tuple(
            {"label": labels.get(s.name, "ground truth"), "study": s.name, "source": s.source, "proxy": s.proxy}
            for s in studies
            if s is truth_study or any(s is p for p in proxies)
        ),
        resamples=resamples,
        seed=seed,
        comparisons=comparisons,
        architectures=architectures,
        regret=regret_after_top_k(frame, resamples=resamples, seed=seed),
        series=series,
    )


def _restricted(studies: Sequence[StudyData], architectures: tuple[str, ...]) -> list[StudyData]:
    wanted = set(architectures)
    known = set().union(*(set(s.trials["architecture"]) for s in studies))
    if not wanted & known:
        raise NasproxyError(
            f"none of the {len(wanted)} listed architectures (e.g. {min(wanted)!r}) was scored by these studies; "
            "check the list against the studies' space"
        )
    return [replace(s, trials=s.trials[s.trials["architecture"].isin(wanted)].reset_index(drop=True)) for s in studies]


def _reference(versus: str | None, table: pd.DataFrame) -> str | None:
    labels = list(table["proxy"])
    if versus is None:
        if "ours" in labels:
            return "ours"
        return labels[0] if len(table) and pd.notna(table["spearman"].iloc[0]) else None
    if versus in labels:
        return versus
    named = [label for label in labels if label.split(" (")[0] == versus]
    if len(named) == 1:
        return named[0]
    choices = ", ".join(labels)
    if named:
        raise NasproxyError(f"{setting('versus')} {versus!r} names several rows; pass one of: {choices}")
    raise NasproxyError(f"{setting('versus')} {versus!r} is not a proxy of this report; pass one of: {choices}")


def _specs(studies: Sequence[StudyData]) -> dict[str, dict]:
    """Architecture -> its design choices, from whichever study recorded them."""
    specs = {}
    for study in studies:
        for arch, spec in zip(study.trials["architecture"], study.trials.get("spec", [None] * len(study.trials))):
            if isinstance(spec, dict):
                specs.setdefault(arch, spec)
    return specs


def _pick_truth(studies: Sequence[StudyData], truth: str | None) -> StudyData:
    if truth is not None:
        named = [s for s in studies if s.name == truth] or [s for s in studies if s.proxy == truth]
        if len(named) != 1:
            found = "none" if not named else ", ".join(s.name for s in named)
            raise NasproxyError(
                f"{setting('truth')} {truth!r} must name exactly one study (found {found}); pass a study name"
            )
        return named[0]
    full = [s for s in studies if s.proxy == TRUTH_PROXY]
    if not full:
        raise NasproxyError(
            "no ground truth: none of the studies was trained on the full data; run `nasproxy search --proxy full` "
            f"over the same architectures (or pass {setting('truth')} STUDY)"
        )
    if len(full) > 1:
        raise NasproxyError(
            f"{len(full)} ground-truth studies ({', '.join(s.name for s in full)}); "
            f"pick one with {setting('truth')} STUDY"
        )
    return full[0]


def _labels(studies: Sequence[StudyData]) -> dict[str, str]:
    """Each study's row label: its proxy's name, plus the protocol settings that differ between studies of
    the same proxy (two protocols of one proxy are two rows)."""
    labels = {}
    by_proxy: dict[str, list[StudyData]] = {}
    for s in studies:
        by_proxy.setdefault(s.proxy, []).append(s)
    for proxy, group in by_proxy.items():
        if len(group) == 1:
            labels[group[0].name] = proxy
            continue
        keys = [k for k in _LABEL_KEYS if len({str(s.protocol.get(k)) for s in group}) > 1]
        for s in group:
            detail = ", ".join(_setting(k, s.protocol.get(k)) for k in keys) or s.name
            labels[s.name] = f"{proxy} ({detail})"
        if len({labels[s.name] for s in group}) < len(group):
            for s in group:
                labels[s.name] = f"{proxy} ({s.name})"
    return labels


def _setting(key: str, value) -> str:
    """How a label shows one protocol setting: augmentation by name (the augmentation control's row reads
    "random (with color_crop_cutout_flip_scale_rotate)"), long hashes shortened."""
    if key == "augment":
        return f"with {value}" if value else "no augmentation"
    return f"{key}={value[:8] if isinstance(value, str) and len(value) > 12 else value}"


def _truth_values(study: StudyData) -> tuple[dict[str, float], str]:
    t = study.trials
    if t["test_mean"].notna().all() and len(t):
        return dict(zip(t["architecture"], t["test_mean"].astype(float))), "test"
    return dict(zip(t["architecture"], t["score"].astype(float))), "validation"


def _truth_info(study: StudyData, metric: str, resamples: int, seed: int) -> TruthInfo:
    t = study.trials
    column = "test_accs" if metric == "test" else "val_accs"
    networks = [
        {"architecture": arch, "repeat": r, "truth": acc}
        for arch, accs in zip(t["architecture"], t[column])
        for r, acc in enumerate(accs or [])
    ]
    ceiling = noise_ceiling(pd.DataFrame(networks, columns=["architecture", "repeat", "truth"]))
    devices = tuple(sorted({str(d) for d in t["device"] if d is not None and d == d}))
    spreads = [float(np.std(accs)) for accs in t[column] if accs and len(accs) > 1]
    return TruthInfo(
        study=study.name,
        metric=metric,
        architectures=len(t),
        epochs=study.protocol.get("epochs"),
        repeats=study.protocol.get("repeats"),
        seconds=float(pd.to_numeric(t["seconds"], errors="coerce").fillna(0).sum()),
        devices=devices,
        ceiling=ceiling,
        convergence=convergence(t, study.protocol.get("epochs"), resamples=resamples, seed=seed),
        network_spread=float(np.median(spreads)) if spreads else None,
    )


def _row(st: ProxyStats, study: StudyData) -> dict[str, Any]:
    p = study.protocol
    condense = (study.proxy_file or {}).get("wall_seconds")
    seconds = pd.to_numeric(study.trials["seconds"], errors="coerce")
    notes = list(st.notes)
    if seconds.isna().any():
        notes.append("some trials recorded no time")
    if p.get("proxy_file") and condense is None:
        notes.append("the condensed set's condensation time is not in the study")
    rep = st.repeat_spearman
    row = {
        "proxy": st.proxy,
        "protocol": _protocol_text(study),
        "architectures": st.architectures,
        "with_truth": st.with_truth,
        "spearman": st.spearman,
        **interval_columns("spearman", st.spearman_ci),
        "kendall": st.kendall,
        **interval_columns("kendall", st.kendall_ci),
        "selected": st.selected,
        "selected_truth": st.selected_truth,
        "regret": st.regret,
        "seconds": float(seconds.fillna(0).sum()) + float(condense or 0.0),
        "condense_seconds": condense,
        "images": _images(study),
        "repeats": None if study.training_free else p.get("repeats"),
        "repeat_spearman_mean": float(np.mean(rep)) if rep else None,
        "repeat_spearman_std": float(np.std(rep)) if len(rep) > 1 else None,
        "study": study.name,
        "notes": "; ".join(notes),
    }
    row.update({f"top{k}_spearman": st.top_spearman.get(k) for k in TOP_K_SPEARMAN})
    row.update({f"precision_at_{k}": st.precision.get(k) for k in TOP_K_PRECISION})
    row.update(interval_columns("top10_spearman", st.top_spearman_ci.get(10)))
    row.update(interval_columns("precision_at_10", st.precision_ci.get(10)))
    return row


def _protocol_text(study: StudyData) -> str:
    p = study.protocol
    if "epochs" not in p:
        return f"protocol {p.get('hash', '?')}"
    if study.training_free:
        return f"training-free, {p.get('zero_cost_batch', '?')} images, seed {p.get('seed')}"
    text = f"{p['epochs']} epochs x {p.get('repeats')} networks, batch {p.get('batch_size')}, lr {p.get('lr')}"
    if p.get("proxy_file"):
        text += f", file {p['proxy_file'][:8]}"
    return text


def _images(study: StudyData) -> int | None:
    """Distinct training images each network of a candidate sees."""
    recorded = pd.to_numeric(study.trials["train_images"], errors="coerce").dropna()
    if len(recorded):
        return int(recorded.max())
    p = study.protocol
    if study.training_free:
        return p.get("zero_cost_batch")
    if p.get("proxy_file") and p.get("proxy") != "early-stopping":
        return p.get("proxy_images")
    return None
