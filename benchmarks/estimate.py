"""Not a timing: how well the re-fitted cost model (``nasproxy/search/_estimate.py``) predicts a sweep's
remaining time. ``python -m benchmarks estimate [--storage JOURNAL]`` replays a journal's studies (default:
the committed Fashion-MNIST experiment's): for each study that trains, on the machine that ran most of its
architectures, it fits on the first 15 % of the architectures in the order they finished (at least 3), and
again on the first half, predicts the rest, and compares with their recorded seconds (``estimate.csv``: the
error of the total, the median absolute error per architecture, whether the total fell in the likely
range). Its ``estimate_pace_spread`` row measures the prior ``PACE_SPREAD``: how much the pace of a stretch of
about ``STRETCH`` architectures differs from its study's, pooled over the studies."""

from __future__ import annotations

import argparse
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np

JOURNAL = Path("results") / "fashion-mnist-nas" / "studies.journal"
FIT_SHARES = (0.15, 0.5)  # early in a sweep (the acceptance's fit) and halfway, when earlier runs are visible
STRETCH = 10  # architectures, in the order they finished, whose pace the prior compares (at least half as many)


def bench_estimate(args: argparse.Namespace) -> list[dict]:
    import optuna

    from nasproxy.search import completed_architectures
    from nasproxy.search._estimate import MIN_FINISHED
    from nasproxy.search._storage import open_storage
    from nasproxy.spaces import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(str(args.storage or JOURNAL), read_only=True)
    rows = []
    stretches = []  # per study: (spread, degrees of freedom)
    activations: dict[tuple[str, str], int] = {}
    for summary in sorted(optuna.get_all_study_summaries(storage), key=lambda s: s.study_name):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        protocol = study.user_attrs.get("protocol", {})
        if not protocol.get("epochs"):
            continue  # training-free: milliseconds, nothing to plan
        space = load_space(study.user_attrs["space"]["name"])
        trials = [t for t in completed_architectures(study).values() if t.user_attrs.get("seconds")]
        machine, _ = Counter(t.user_attrs.get("machine") for t in trials).most_common(1)[0]
        trials = sorted(
            (t for t in trials if t.user_attrs.get("machine") == machine), key=lambda t: t.datetime_complete
        )
        x = partial(_features, space, activations)
        stretches.append(_stretch_spread(trials, x))
        for share in FIT_SHARES:
            n_fit = max(MIN_FINISHED, round(share * len(trials)))
            if len(trials) >= n_fit + 3:
                rows.append(_replay(study, protocol, machine, trials[:n_fit], trials[n_fit:], x, share))
    df = sum(d for _, d in stretches)
    pooled = float(np.sqrt(sum(d * spread**2 for spread, d in stretches) / df))
    print(f"[bench] estimate: the pace of {STRETCH} architectures against their study's varies by {pooled:.3f} (log)")
    rows.append({"benchmark": "estimate_pace_spread", "fitted_on": len(stretches), "pace_spread": round(pooled, 4)})
    return rows


def _stretch_spread(trials: list, x) -> tuple[float, int]:
    """The spread of the pace of consecutive stretches of a study's architectures (fitted on all of them)."""
    from nasproxy.search._estimate import fit, stretch_spread, timed_in_one_place

    whole = [t for t in trials if timed_in_one_place(t)]
    features = np.array([x(t) for t in whole])
    seconds = np.array([t.user_attrs["seconds"] for t in whole])
    log_relative = np.log(seconds / (features @ fit(features, seconds)))
    groups = [log_relative[i : i + STRETCH] for i in range(0, len(seconds), STRETCH)]
    groups = [g for g in groups if len(g) >= STRETCH // 2]
    return (stretch_spread(groups), len(groups) - 1) if len(groups) >= 2 else (0.0, 0)


def _replay(study, protocol: dict, machine: str, first: list, rest: list, x, share: float) -> dict:
    from nasproxy.search._estimate import refit_estimate, runs_of

    measured = np.array([t.user_attrs["seconds"] for t in rest], float)
    runs = runs_of(first)
    rest_x = [x(t) for t in rest]
    estimate = refit_estimate([x(t) for t in first], [t.user_attrs["seconds"] for t in first], rest_x, runs=runs)
    each = np.array(rest_x) @ np.array(estimate.coef)  # the fit the estimate made, per architecture
    row = {
        "benchmark": "estimate_replay",
        "study": study.study_name,
        "proxy": protocol.get("proxy"),
        "trained_on": machine,
        "fit_share": share,
        "fitted_on": len(first),
        "runs_fitted_on": len(set(runs)),
        "predicted": len(rest),
        "measured_seconds": round(float(measured.sum()), 1),
        "estimated_seconds": round(estimate.seconds, 1),
        "likely_low": round(estimate.low, 1),
        "likely_high": round(estimate.high, 1),
        "total_error": round(estimate.seconds / measured.sum() - 1, 4),
        "in_likely_range": bool(estimate.low <= measured.sum() <= estimate.high),
        "median_abs_error_per_architecture": round(float(np.median(np.abs(each / measured - 1))), 4),
    }
    print(
        f"[bench] estimate {study.study_name} (fit on {share:.0%}): {estimate.seconds:,.0f} s predicted for "
        f"{len(rest)} architectures, {measured.sum():,.0f} s measured ({row['total_error']:+.1%})"
    )
    return row


def _features(space, activations: dict, trial) -> np.ndarray:
    from nasproxy.search._cost import forward_activations
    from nasproxy.search._estimate import features

    arch = trial.user_attrs["arch_id"]
    if (space.name, arch) not in activations:
        spec = space.get(arch).spec
        activations[(space.name, arch)] = forward_activations(
            lambda: space.build(spec, channels=1, num_classes=10, image_size=(28, 28)), (1, 28, 28)
        )
    return features(float(trial.user_attrs["flops"]), float(activations[(space.name, arch)]))


# fresh sweeps whose pre-run estimate is checked against their measured time: (label, search options)
FRESH_RUNS = {
    "tiny, random 10-ipc set, paper protocol": dict(
        space="tiny", proxy="random", proxy_file="results/proxies/fmnist-random-ipc10.pt"
    ),
    "README main job's ground truth": dict(
        space="paper720-w64", proxy="full", sample=8, sample_seed=4, epochs=1, repeats=2, score_test=False
    ),
}


def bench_estimate_fresh(args: argparse.Namespace) -> list[dict]:
    """The pre-run estimate (before any architecture has finished) of fresh sweeps against their measured
    time on this machine: each runs into a new journal and cache, with its workers' worker time as the
    measure."""
    import os
    import tempfile
    import time

    import nasproxy

    rows = []
    for label, options in FRESH_RUNS.items():
        with tempfile.TemporaryDirectory() as tmp:
            journal = Path(tmp) / "fresh.journal"
            # a cache of its own: no checkpoint of an earlier run of the same study may be resumed
            os.environ["NASPROXY_CACHE"] = str(Path(tmp) / "cache")
            start = time.perf_counter()
            plan = nasproxy.search(storage=journal, dry_run=True, device=args.device, **options).plan
            priced = time.perf_counter() - start
            start = time.perf_counter()
            result = nasproxy.search(storage=journal, device=args.device, **options)
            wall = time.perf_counter() - start
        measured = float(result.trials["seconds"].sum())
        e = plan.estimate
        rows.append(
            {
                "benchmark": "estimate_fresh",
                "run": label,
                "study": plan.study_name,
                "architectures": plan.total,
                "estimate_from": f"timing {e.calibrated_on} architectures" if e.calibrated_on else "FLOP model",
                "pricing_seconds": round(priced, 1),
                "estimated_seconds": round(e.seconds, 1),
                "likely_low": round(e.low, 1),
                "likely_high": round(e.high, 1),
                "measured_seconds": round(measured, 1),
                "wall_seconds": round(wall, 1),
                "ratio_measured_to_estimated": round(measured / e.seconds, 3),
                "in_likely_range": bool(e.low <= measured <= e.high),
            }
        )
        print(
            f"[bench] estimate-fresh {label}: estimated {e.seconds:,.0f} s ({e.low:,.0f}-{e.high:,.0f}), "
            f"measured {measured:,.0f} s of worker time ({wall:,.0f} s wall)"
        )
    return rows
