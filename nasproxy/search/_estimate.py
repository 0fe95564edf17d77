"""What the rest of a sweep will cost, learned from the study's own finished architectures.

Before any architecture is done, the plan prices each one by its FLOPs at one reference network's measured
rate plus a fixed step cost (``_cost``), which misprices architectures far from that network (norms,
activations, no pooling). Once ``MIN_FINISHED`` architectures are done on this machine, device and backend,
their recorded seconds re-fit the price: seconds = a x FLOPs + b x activations + c, where FLOPs and activation
elements are one image's forward pass (arithmetic, and the element-wise work of norms, activations and
pooling), fitted with non-negative coefficients to relative error. Its range comes from refitting on
bootstrap resamples of the finished architectures with their relative residuals added back: "likely" is its
central 80 %."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

MIN_FINISHED = 3  # finished architectures (this machine, device and backend) before the re-fit replaces the prior
LIKELY = 0.80  # the central share of the bootstrap that the printed range holds
MAX_DRIFT = 2.0  # the most the range widens for drift: the bound within which the estimate is meant to hold


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
    resamples: int = 300,
    seed: int = 0,
) -> Estimate:
    """The remaining architectures' total seconds from the finished ones (``MIN_FINISHED`` or more)."""
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
    drift = speed_drift(x, s, coef, horizon=len(rest) / len(s))
    low, high = low / drift, high * drift
    return Estimate(total, float(min(low, total)), float(max(high, total)), len(s), coef=tuple(coef))


def speed_drift(x: np.ndarray, seconds: np.ndarray, coef: np.ndarray, *, horizon: float) -> float:
    """The factor by which the machine's speed may drift while the rest runs (>= 1): the change of the
    finished architectures' measured / fitted ratio from their earlier to their later half (rows in the order
    they finished; 1 with fewer than ``2 * MIN_FINISHED``), grown as a random walk over ``horizon`` times the
    time they took. A machine's speed drifts over a study's hours (other work, another session's machine),
    which the bootstrap over architectures does not see."""
    half = len(seconds) // 2
    if half < MIN_FINISHED:
        return 1.0
    relative = seconds / np.maximum(x @ coef, 1e-9)
    step = abs(float(np.log(np.median(relative[half:]) / np.median(relative[:half]))))
    return float(min(np.exp(step * np.sqrt(max(horizon, 1.0))), MAX_DRIFT))


def refit_to_trials(trials, where: dict, x, remaining: Sequence[str]) -> Estimate | None:
    """The ``remaining`` architectures priced from the finished ``trials`` that ran at ``where`` (their
    machine, device and backend: other places run at other speeds; a resumed trial's seconds ran partly
    elsewhere), None until ``MIN_FINISHED`` have. ``x(arch)``: the architecture's features."""
    here = [
        t
        for t in trials
        if all(t.user_attrs.get(k) == v for k, v in where.items())
        and t.user_attrs.get("seconds")
        and not t.user_attrs.get("resumed_seconds")
    ]
    if len(here) < MIN_FINISHED:
        return None
    here.sort(key=finished_at)  # the range's drift compares the earlier with the later ones
    seconds = [float(t.user_attrs["seconds"]) for t in here]
    return refit_estimate([x(t.user_attrs["arch_id"]) for t in here], seconds, [x(a) for a in remaining])


def finished_at(trial) -> datetime:
    return trial.datetime_complete or datetime.min


def duration_text(seconds: float) -> str:
    """Seconds as a person plans by: "40 s", "25 min", "3.1 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
