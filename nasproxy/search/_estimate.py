"""What the rest of a sweep will cost, learned from the study's own finished architectures.

Before any architecture is done, the plan prices each one by its FLOPs at one reference network's measured
rate plus a fixed step cost (``_cost``), which misprices architectures far from that network (norms,
activations, no pooling). Once ``MIN_FINISHED`` architectures are done on this machine, device and backend,
their recorded seconds re-fit the price: seconds = a x FLOPs + b x activations + c, where FLOPs and activation
elements are one image's forward pass (arithmetic, and the element-wise work of norms, activations and
pooling), fitted with non-negative coefficients to relative error. Its range comes from refitting on
bootstrap resamples of the finished architectures with their relative residuals added back ("likely" is its
central 80 %), widened by how much the machine's pace may change while the rest runs: the drift seen so far
(``speed_drift``), and the spread of one run's pace against another's (``run_spread``), shrunk towards the
spread this project measured across its own sweeps (``PACE_SPREAD``) while the study has shown few runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

MIN_FINISHED = 3  # finished architectures (this machine, device and backend) before the re-fit replaces the prior
LIKELY = 0.80  # the central share of the bootstrap that the printed range holds
MAX_DRIFT = 2.0  # the most the range widens for drift: the bound within which the estimate is meant to hold
RUN_GAP = 600  # seconds between one worker's trials beyond which a later run, not that worker, ran them
Z_LIKELY = 1.2816  # the normal quantile of (1 + LIKELY) / 2: the drift's share of the likely range
# The standard deviation of the log pace of a stretch of a sweep (about 10 architectures) around its study's,
# pooled over the NAS experiment's 11 training studies on 2-core CPUs (sessions, machines of one name, other
# work beside it; noise of the architectures removed): 0.146 (``python -m benchmarks estimate``, its
# ``estimate_pace_spread`` row). A study that has shown one run cannot measure this, and its rest meets it.
PACE_SPREAD = 0.15
PRIOR_RUNS = 1  # the weight of PACE_SPREAD against the runs a study has shown (degrees of freedom)


@dataclass(frozen=True)
class Estimate:
    seconds: float
    low: float  # the likely range (LIKELY of the bootstrap)
    high: float
    fitted_on: int  # finished architectures the price was fitted to; 0: none finished here yet
    calibrated_on: int = 0  # before any finished: architectures timed at the start (0: the FLOP model alone)
    # an architecture's predicted seconds = features(flops, activations) @ coef (None: the FLOP model's)
    coef: tuple[float, float, float] | None = None

    def predicted_seconds(self, flops: float, activations: float) -> float | None:
        return None if self.coef is None else float(features(flops, activations) @ np.array(self.coef))

    def describe(self) -> str:
        if self.low == self.high:
            return f"about {duration_text(self.seconds)}"
        return f"about {duration_text(self.seconds)}, likely {duration_text(self.low)}-{duration_text(self.high)}"


def features(flops: float, activations: float) -> np.ndarray:
    return np.array([flops, activations, 1.0])


def fit(x: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Non-negative coefficients of ``seconds ~ x @ coef``, minimising the relative error."""
    from scipy.optimize import nnls

    scale = x.max(axis=0)
    scale[scale == 0] = 1.0
    weights = 1.0 / seconds
    coef, _ = nnls((x / scale) * weights[:, None], seconds * weights)
    return coef / scale


def refit_estimate(
    finished_x: Sequence[np.ndarray],
    finished_seconds: Sequence[float],
    remaining_x: Sequence[np.ndarray],
    *,
    runs: Sequence[int] | None = None,
    pace_spread: float = PACE_SPREAD,
    resamples: int = 300,
    seed: int = 0,
) -> Estimate:
    """The remaining architectures' total seconds from the finished ones (``MIN_FINISHED`` or more).
    ``runs``: which run (one start of the sweep's workers) finished each (see ``runs_of``; None: one run).
    ``pace_spread``: the prior spread of the pace of runs not seen yet (0: a machine known to be steady)."""
    x, s = np.array(finished_x, float), np.array(finished_seconds, float)
    rest = np.array(remaining_x, float).reshape(-1, 3)
    coef = fit(x, s)
    total = float((rest @ coef).sum())
    if not len(rest):
        return Estimate(0.0, 0.0, 0.0, len(s), coef=tuple(coef))
    relative = s / np.maximum(x @ coef, 1e-9)  # each finished architecture's measured / fitted
    rng = np.random.default_rng(seed)
    totals = []
    for _ in range(resamples):
        pick = rng.integers(0, len(s), len(s))
        boot = fit(x[pick], s[pick])
        noise = rng.choice(relative, size=len(rest))  # each remaining one off by a residual seen so far
        totals.append(float((rest @ boot * noise).sum()))
    low, high = np.quantile(totals, [(1 - LIKELY) / 2, (1 + LIKELY) / 2])
    log_relative = np.log(relative)
    # the rest may run in another run, or beside other work, at its own pace: the runs seen so far measure
    # that spread with (their number - 1) degrees of freedom, the prior with PRIOR_RUNS
    seen, df = run_spread(log_relative, runs if runs is not None else [0] * len(s))
    between = np.sqrt((df * seen**2 + PRIOR_RUNS * pace_spread**2) / (df + PRIOR_RUNS))
    spread = max(speed_drift(log_relative, s, remaining_seconds=total), float(between))
    drift = min(Z_LIKELY * spread, np.log(MAX_DRIFT))
    # the architectures' spread and the machine's drift are independent: their log half-widths add in quadrature
    down = np.hypot(np.log(total / max(min(low, total), 1e-9)), drift)
    up = np.hypot(np.log(max(high, total) / max(total, 1e-9)), drift)
    return Estimate(total, total * float(np.exp(-down)), total * float(np.exp(up)), len(s), coef=tuple(coef))


def speed_drift(log_relative: np.ndarray, seconds: np.ndarray, *, remaining_seconds: float) -> float:
    """The standard deviation of the log of the factor by which the machine's speed may drift while the
    rest runs (0: no drift seen). A machine's speed drifts over a study's hours (other work, another
    session's machine), which the bootstrap over architectures does not see. Measured as the change of the
    finished architectures' measured / fitted ratio from their earlier to their later half (rows in the
    order they finished; none with fewer than ``2 * MIN_FINISHED``), less what the architectures' own noise
    makes two medians differ by, and grown as a random walk in time: from the middle of the finished ones
    (where the fit sits) to the middle of the rest. ``log_relative``: each one's log measured / fitted."""
    half = len(seconds) // 2
    if half < MIN_FINISHED:
        return 0.0
    early, late = log_relative[:half], log_relative[half:]
    step = float(np.median(late) - np.median(early))
    sigma = _robust_sigma(log_relative - np.median(log_relative))
    noise = _median_variance(sigma, len(early)) + _median_variance(sigma, len(late))  # of their difference
    per_second = max(step**2 - noise, 0.0) / (float(seconds.sum()) / 2)  # the halves' middles lie half apart
    spread = per_second * (float(seconds.sum()) / 2 + remaining_seconds / 3)  # the rest's mean level drifts
    return float(np.sqrt(spread))


def run_spread(log_relative: np.ndarray, runs: Sequence[int]) -> tuple[float, int]:
    """The standard deviation of the log speed of one run against another, less what the architectures'
    own noise makes their medians differ by, and its degrees of freedom (the runs of ``MIN_FINISHED`` or
    more architectures, less one; (0, 0) below two). Sessions on other machines of the same kind, or beside
    other work, run at their own pace: what the rest of a sweep that outlasts its run meets, and what the
    drift within one run does not show."""
    labels = np.asarray(runs)
    groups = [log_relative[labels == r] for r in dict.fromkeys(runs)]
    groups = [g for g in groups if len(g) >= MIN_FINISHED]
    if len(groups) < 2:
        return 0.0, 0
    return stretch_spread(groups), len(groups) - 1


def stretch_spread(groups: Sequence[np.ndarray]) -> float:
    """The standard deviation of the groups' median log speed around their mean, less what the
    architectures' own noise makes their medians differ by (each group: its architectures' log measured /
    fitted)."""
    sigma = _robust_sigma(np.concatenate([g - np.median(g) for g in groups]))
    noise = float(np.mean([_median_variance(sigma, len(g)) for g in groups]))
    return float(np.sqrt(max(np.var([np.median(g) for g in groups], ddof=1) - noise, 0.0)))


def _robust_sigma(deviations: np.ndarray) -> float:
    """The standard deviation of normal noise from deviations around a median (their MAD, scaled)."""
    return 1.4826 * float(np.median(np.abs(deviations)))


def _median_variance(sigma: float, n: int) -> float:
    """The variance of the median of ``n`` draws of normal noise of deviation ``sigma``."""
    return np.pi / 2 * sigma**2 / n


def runs_of(trials) -> list[int]:
    """Which run finished each trial. A worker (host and process id) claims its next architecture as soon as
    one is recorded, so its trials follow each other within ``RUN_GAP``; workers whose spans overlap were
    started together. (A fresh machine may hand a later run's worker the same process id: the gap tells.)"""
    order = sorted(range(len(trials)), key=lambda i: trials[i].datetime_start or finished_at(trials[i]))
    spans: list[list] = []  # [start, end, trial indices]
    open_span: dict[tuple, list] = {}
    for i in order:
        t = trials[i]
        key = (t.user_attrs.get("host"), t.user_attrs.get("pid"))
        start, end = t.datetime_start or finished_at(t), finished_at(t)
        span = open_span.get(key)
        if span is None or (start - span[1]).total_seconds() > RUN_GAP:
            span = open_span[key] = [start, end, []]
            spans.append(span)
        span[1] = max(span[1], end)
        span[2].append(i)
    run, ends, labels = -1, datetime.min, [0] * len(trials)
    for start, end, members in sorted(spans, key=lambda span: span[0]):
        if start > ends:
            run += 1
        ends = max(ends, end)
        for i in members:
            labels[i] = run
    return labels


PLACE = ("machine", "device", "backend")  # the trial attributes its speed depends on


def timed_in_one_place(trial) -> bool:
    """Whether a finished trial's seconds can price others: recorded, and not partly run elsewhere (a resumed
    trial's earlier seconds ran in another run, maybe on another machine)."""
    return bool(trial.user_attrs.get("seconds")) and not trial.user_attrs.get("resumed_seconds")


def refit_to_trials(trials, where: dict, x, remaining: Sequence[str]) -> Estimate | None:
    """The ``remaining`` architectures priced from the finished ``trials`` that ran at ``where`` (their
    ``PLACE``: other places run at other speeds) in one place (``timed_in_one_place``), None until
    ``MIN_FINISHED`` have. ``x(arch)``: the architecture's features."""
    here = [t for t in trials if all(t.user_attrs.get(k) == v for k, v in where.items()) and timed_in_one_place(t)]
    if len(here) < MIN_FINISHED:
        return None
    here.sort(key=finished_at)  # the range's drift compares the earlier with the later ones
    seconds = [float(t.user_attrs["seconds"]) for t in here]
    return refit_estimate(
        [x(t.user_attrs["arch_id"]) for t in here], seconds, [x(a) for a in remaining], runs=runs_of(here)
    )


def finished_at(trial) -> datetime:
    return trial.datetime_complete or datetime.min


def duration_text(seconds: float) -> str:
    """Seconds as a person plans by: "40 s", "25 min", "3.1 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
