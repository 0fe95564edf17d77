"""The price of a sweep before any architecture of it has finished: time a few training steps and a scoring
pass of a handful of the sweep's own architectures, spread over its range of cost, on this device and
backend, exactly as the proxy trains them (the same engine, batch, precision, augmentation and number of
networks), and fit the cost model of ``_estimate`` to them. One reference network's FLOP rate (the prior)
misprices norms, activations, unpooled networks and small batches; these probes measure them.

Its range is the accuracy the calibration has shown on fresh runs (``results/bench/estimate-fresh.csv``):
within ``CALIBRATED_WITHIN`` times the measured total, either way."""

from __future__ import annotations

import dataclasses
import math
import time
from functools import partial

import numpy as np
import torch

from nasproxy.search._estimate import Estimate, features, fit

PROBES = 4  # architectures timed, from the cheapest to the costliest by the FLOP model
TIMED_STEPS = 3  # training steps timed per probe at first, after one untimed (first-call costs) ...
MIN_TIMED_SECONDS = 0.25  # ... four times more until they take this long (cheap networks time noisily) ...
MAX_TIMED_STEPS = 192  # ... or this many, or the steps the sweep trains an architecture for (a probe that
# trains longer than the architecture will costs more than it tells, and small sweeps would pay twice)
SCORED_PROBE_IMAGES = 512  # images scored per probe
# A run this long is timed once, not the faster of two, and a training step this long is timed by one more
# step: noise is a small part of it, and repeating it costs minutes (a large network on a CPU: pricing the
# whole paper720 with the full proxy on one core took half the time, results/bench/pricing.csv)
LONG_RUN_SECONDS = 2.0
CALIBRATED_WITHIN = 1.5  # the printed range: estimate / 1.5 to estimate x 1.5


def probe_architectures(archs: list[str], prior_cost) -> list[str]:
    """Up to ``PROBES`` of ``archs`` at evenly spaced ranks of their prior cost (cheapest and costliest
    included), so that the fit spans the sweep."""
    ranked = sorted(dict.fromkeys(archs), key=lambda a: (prior_cost(a), a))
    if len(ranked) <= PROBES:
        return ranked
    picks = np.linspace(0, len(ranked) - 1, PROBES).round().astype(int)
    return [ranked[i] for i in dict.fromkeys(picks.tolist())]


def _seconds(device: torch.device, run) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _timed(device: torch.device, run) -> float:
    """Seconds of ``run``: the faster of two (other processes only ever add time), or of one where that one
    took ``LONG_RUN_SECONDS`` or more."""
    first = _seconds(device, run)
    return first if first >= LONG_RUN_SECONDS else min(first, _seconds(device, run))


def _step_seconds(device: torch.device, train, max_steps: int = MAX_TIMED_STEPS) -> float:
    """Seconds per training step: runs of 1 and 1 + n steps, n growing until their difference is long enough
    to time or n reaches ``max_steps``; each the faster of two. A step of ``LONG_RUN_SECONDS`` or more is
    timed by single runs of 1 and 2 steps."""
    one = _timed(device, partial(train, 1))
    long = one >= LONG_RUN_SECONDS
    steps = 1 if long else min(TIMED_STEPS, max_steps)
    while True:
        more = _seconds(device, partial(train, 1 + steps))
        if more - one >= MIN_TIMED_SECONDS or steps >= max_steps:
            if not long:
                more = min(more, _seconds(device, partial(train, 1 + steps)))
            return max(more - one, 0.0) / steps
        steps = min(steps * 4, max_steps)


def time_architecture(ctx, arch: str, work) -> tuple[float, float]:
    """(seconds of one training step of the protocol's networks together, seconds to score one image with
    all of them) for ``arch`` on the search's device and backend."""
    from nasproxy.engine import accuracy, train_from_scratch
    from nasproxy.search.proxies._training import builder

    protocol, dataset, runtime = ctx.protocol, ctx.dataset, ctx.runtime
    device = runtime.device
    batch = max(1, round(work.train_images / work.steps))
    c, h, w = dataset.image_shape
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch * (1 + TIMED_STEPS), c, h, w, generator=generator).to(device)
    labels = (torch.arange(len(images)) % dataset.num_classes).to(device)
    config = dataclasses.replace(
        protocol.train_config(), epochs=1, batch_size=batch, backend=runtime.backend, compile=False
    )
    seeds = list(range(protocol.repeats))
    build = builder(ctx.space, ctx.space.get(arch), dataset)

    def train(steps: int):
        epochs = math.ceil(steps / (1 + TIMED_STEPS))  # the probe's images hold 1 + TIMED_STEPS batches
        timed = dataclasses.replace(config, epochs=epochs, max_steps=steps)
        return train_from_scratch(build, images, labels, timed, seeds=seeds)

    nets = train(1)  # building, first calls and the backend's kernels: paid once per run, not per step
    step = _step_seconds(device, train, max_steps=max(1, min(MAX_TIMED_STEPS, work.steps)))
    scored = images[: min(SCORED_PROBE_IMAGES, len(images))]
    if len(scored) < SCORED_PROBE_IMAGES:
        scored = scored.repeat(math.ceil(SCORED_PROBE_IMAGES / len(scored)), 1, 1, 1)[:SCORED_PROBE_IMAGES]
    score_labels = (torch.arange(len(scored)) % dataset.num_classes).to(device)

    def score():
        return accuracy(nets, scored, score_labels, precision=protocol.precision, backend=runtime.backend)

    score()  # first calls
    per_image = _timed(device, score) / len(scored)
    return max(step, 0.0), per_image


def calibrated_estimate(ctx, archs: list[str], work, prior_cost) -> Estimate:
    """The total seconds of ``archs`` (each: ``work.steps`` training steps of the protocol's networks and
    ``work.scored_images`` scored), from probes of a few of them."""
    probes = probe_architectures(archs, prior_cost)
    x = lambda arch: features(float(ctx.flops(arch)), float(ctx.activations(arch)))  # noqa: E731
    measured = [time_architecture(ctx, arch, work) for arch in probes]
    px = np.array([x(a) for a in probes])
    step_coef = fit(px, np.array([max(m[0], 1e-6) for m in measured]))
    score_coef = fit(px, np.array([max(m[1], 1e-9) for m in measured]))
    # an architecture's seconds: its steps and its scoring, the coefficients of both added up
    coef = work.steps * step_coef + work.scored_images * score_coef
    total = float((np.array([x(a) for a in archs]) @ coef).sum())
    low, high = total / CALIBRATED_WITHIN, total * CALIBRATED_WITHIN
    return Estimate(total, low, high, 0, calibrated_on=len(probes), coef=tuple(map(float, coef)))
