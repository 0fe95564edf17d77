"""Planning a search: which architectures it completes, how many are done, and what the rest will cost."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from nasproxy._errors import NasproxyError, setting
from nasproxy.search._claims import completed_architectures
from nasproxy.search._context import SearchContext, SearchRequest
from nasproxy.search._estimate import PLACE, Estimate, features, refit_to_trials
from nasproxy.search._progress import TARGETS_ATTR

# before any architecture finished, the FLOP model prices from one reference network's speed; measured here,
# whole sweeps then took up to 7.3x as long as it said (the estimate issue's table): the range says so
PRIOR_SHORT_BY = 7.3
# a sweep the FLOP model prices at 10 s or more is priced again by timing a few of its architectures
# (``_calibrate``: seconds for small networks, minutes for large ones on a CPU); shorter ones keep the FLOP
# model's price
CALIBRATE_ABOVE_SECONDS = 10.0


@dataclass
class Plan:
    request: SearchRequest
    study_name: str
    storage_url: str
    protocol: Any
    targets: list[str]  # architecture ids a sweep completes (with TPE: the whole space, to draw from)
    total: int  # architectures this search completes
    done: int
    device_name: str
    price: Callable[[Callable[[str], None] | None], Estimate] = field(repr=False)
    # told, before the estimate's first read times some of the sweep's architectures, what it is doing
    # (it takes minutes where those networks are large and the device a CPU)
    announce: Callable[[str], None] | None = field(default=None, repr=False)

    @cached_property
    def estimate(self) -> Estimate:
        """What the architectures left cost here, with its range: re-fitted to those finished on this machine,
        else timed, when first read (a quiet search that never shows it does not time the machine)."""
        return self.price(self.announce)

    @property
    def estimate_seconds(self) -> float:
        return self.estimate.seconds


def plan_search(request: SearchRequest, *, dry_run: bool = False) -> tuple[Plan, SearchContext]:
    """Load and validate everything and create the study; the plan prices what is left when its
    ``estimate`` is first read. ``dry_run``: only read the storage (a study it lacks counts as nothing done),
    so that pricing changes nothing. A sweep of ``CALIBRATE_ABOVE_SECONDS`` or more is priced by timing a
    few of its architectures, when more than those few are left."""
    if request.sampler not in ("sweep", "tpe"):
        raise NasproxyError(f"unknown sampler {request.sampler!r}; choose sweep or tpe")
    ctx = SearchContext(request)
    space = ctx.space
    if request.sampler == "tpe" and (not hasattr(space, "axes") or request.only or request.sample):
        raise NasproxyError(
            f"{setting('sampler')} tpe needs a grid space (built-in or YAML) and no {setting('sample')}/"
            f"{setting('only_top')}"
        )
    study = ctx.existing_study() if dry_run else ctx.open_study(create=True)
    if request.only:
        unknown = [a for a in request.only if a not in {c.arch_id for c in space.candidates()}]
        if unknown:
            raise NasproxyError(f"{len(unknown)} architectures are not in space {space.name!r} (e.g. {unknown[0]})")
        targets = list(dict.fromkeys(request.only))
    elif request.sample is not None:
        if request.sample < 1:
            raise NasproxyError(f"{setting('sample')} must be at least 1")
        targets = [c.arch_id for c in space.sample(request.sample, seed=request.sample_seed)]
    else:
        targets = [c.arch_id for c in space.candidates()]
    done_ids = {} if study is None else completed_architectures(study)
    if request.sampler == "tpe":
        total = min(request.trials, len(space))
        done = min(total, len(done_ids))
        # TPE's picks are unknown in advance: price the remainder at the cost of a seeded sample of the space
        priced = [c.arch_id for c in space.sample(32, seed=0)]
        scale = (total - done) / len(priced)
    else:
        total, done = len(targets), sum(a in done_ids for a in targets)
        priced = [a for a in targets if a not in done_ids]
        scale = 1.0
        if not dry_run:
            record_targets(study, {a: [ctx.flops(a), ctx.activations(a)] for a in targets})
    work = ctx.proxy.work(ctx.protocol, ctx.dataset)
    trains = total > done and work.steps > 0
    # this machine's finished architectures price the rest without timing anything: worker 0 ranks by them
    refitted = _refit(ctx, done_ids, priced) if trains and study is not None and request.sampler == "sweep" else None
    ctx.price = refitted

    def price(announce: Callable[[str], None] | None = None) -> Estimate:
        if refitted is not None or not trains:
            return refitted or Estimate(0.0, 0.0, 0.0, 0)
        estimate = scale * _prior_seconds(ctx, work, priced)
        priced_estimate = Estimate(estimate, estimate, estimate * PRIOR_SHORT_BY, 0)
        from nasproxy.search._calibrate import PROBES, calibrated_estimate

        # timing every architecture left would cost about what training them does: the prior prices so few
        if estimate >= CALIBRATE_ABOVE_SECONDS and len(priced) > PROBES:
            if announce is not None:
                announce(
                    f"pricing this search: timing {PROBES} of its architectures here, cheapest to costliest "
                    "(seconds for small networks, minutes for large ones on a CPU)"
                )
            calibrated = calibrated_estimate(ctx, priced, work, prior_cost=ctx.flops)
            priced_estimate = dataclasses.replace(
                calibrated, seconds=scale * calibrated.seconds, low=scale * calibrated.low, high=scale * calibrated.high
            )
        ctx.price = priced_estimate  # read before the workers start, it ranks their first architectures
        return priced_estimate

    from nasproxy.engine import device_name

    plan = Plan(
        request, ctx.study_name, ctx.storage_url, ctx.protocol, targets, total, done, device_name(ctx.device), price
    )
    return plan, ctx


def _prior_seconds(ctx: SearchContext, work, priced: list[str]) -> float:
    """What training ``priced`` takes by the FLOP model and this device's measured speed."""
    from nasproxy.search._cost import measured_flops_per_second, measured_step_seconds

    shape = ctx.dataset.image_shape
    speed = measured_flops_per_second(ctx.runtime, shape, ctx.dataset.num_classes, ctx.request.precision)
    # small networks on small batches are bound by per-step overheads (Python, dispatch, the optimizer),
    # not arithmetic: every SGD step and scoring batch also pays the step time of a minimal network
    overhead = measured_step_seconds(ctx.runtime, shape, ctx.dataset.num_classes)
    per_network_overhead = (work.steps + math.ceil(work.scored_images / 256)) * overhead
    seconds = 0.0
    for arch in priced:
        arithmetic = ctx.flops(arch) * (3 * work.train_images + work.scored_images) / speed
        seconds += ctx.protocol.repeats * (arithmetic + per_network_overhead)
    return seconds


def remaining_estimate(ctx: SearchContext, done: dict, targets: list[str]) -> Estimate | None:
    """What the targets not in ``done`` (the completed architectures) will take, re-fitted to what this
    machine finished (None until ``MIN_FINISHED`` have): what a running sweep's progress bar shows."""
    return _refit(ctx, done, [a for a in targets if a not in done])


def _refit(ctx: SearchContext, done: dict, remaining: list[str]) -> Estimate | None:
    """The remaining architectures priced from those this machine, device and backend finished (None until
    ``MIN_FINISHED`` have)."""
    where = dict(zip(PLACE, (ctx.machine, str(ctx.device), ctx.runtime.backend)))
    x = lambda arch: features(float(ctx.flops(arch)), float(ctx.activations(arch)))  # noqa: E731
    return refit_to_trials(done.values(), where, x, remaining)


def record_targets(study, targets: dict[str, list[int]]) -> None:
    """Add a sweep's architectures (with the cost model's features) to those its study records, so that
    ``nasproxy studies`` can price what is left of every sweep run into it. Written only when it grows."""
    known = study.user_attrs.get(TARGETS_ATTR, {})
    if not set(targets) <= set(known):
        study.set_user_attr(TARGETS_ATTR, dict(sorted({**known, **targets}.items())))
