"""The training loop: SGD on in-memory tensors, packed networks, optional CUDA graphs and compile."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from nasproxy._configs import TrainConfig
from nasproxy.augment import augment_batch, parse_strategy
from nasproxy.backends import apply_backend, resolve_backend
from nasproxy.engine._accel import (
    COMPILE_MIN_STEPS,
    _GraphedStep,
    _groups,
    compiled,
    training_pack,
    use_compile,
    use_cuda_graph,
)
from nasproxy.engine._checkpoint import Checkpoint, Progress, fingerprint
from nasproxy.engine._device import autocast
from nasproxy.engine._hooks import EpochHook, FitStats, StepHook
from nasproxy.engine._sgd import SGD
from nasproxy.models import stack_convnets, unstack_convnet


def fit(
    modules: Sequence[nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    *,
    generators: Sequence[torch.Generator],
    progress: Callable[[int], None] | None = None,
    hook: EpochHook | None = None,
    on_step: StepHook | None = None,
    checkpoint: Checkpoint | None = None,
) -> FitStats:
    """Train ``modules`` in place with SGD on ``images``; module i shuffles (and augments, with
    ``config.augment``) with ``generators[i]``. The modules are first made to run on ``config.backend`` (in
    place, :func:`nasproxy.backends.apply_backend`). ``on_step(module index, image indices [b], logits [b, K])``
    sees every training step's outputs (e.g. to count forgetting events). With ``checkpoint``, progress is
    saved at epoch ends and a saved run of the same networks and settings is continued (an epoch hook is not
    called again for epochs done before the save: ``checkpoint.state`` keeps what it recorded).

    Packed and one-by-one training give the same result up to float rounding (tests check this).
    """
    if len(generators) != len(modules):
        raise ValueError("fit needs one generator per module")
    backend = resolve_backend(config.backend, images.device)
    stats = FitStats(backend=backend)
    if not modules:
        return stats
    n = len(images)
    planned_steps = config.epochs * math.ceil(n / min(config.batch_size, max(n, 1)))
    if config.max_steps is not None:
        planned_steps = min(planned_steps, config.max_steps)
    use_compiled = use_compile(
        config.compile, planned_steps * len(modules), COMPILE_MIN_STEPS, images.device, precision=config.precision
    )
    # a captured step would replay one augmentation, and hide its outputs from on_step
    use_graph = use_cuda_graph(config.cuda_graph, planned_steps, images.device, use_compiled)
    use_graph = use_graph and config.augment is None and on_step is None
    progress_file = Progress(checkpoint, partial(fingerprint, modules, images, labels, config), images.device)
    stats.resumed = progress_file.resumed
    for g, group in enumerate(_groups(modules, training_pack(config, images.device, modules[0]))):
        members = [modules[i] for i in group]
        if progress_file.done_before(g):
            for i in group:  # as they would leave training: loaded, and on the backend
                apply_backend(modules[i], backend).load_state_dict(progress_file.finished[i])
            if progress is not None:
                for _ in range(config.epochs):
                    progress(len(group))
            stats.steps = max(stats.steps, planned_steps)
            continue
        packed = apply_backend(stack_convnets(members) if len(members) > 1 else members[0], backend)
        steps = _fit_one(
            packed,
            len(members),
            images,
            labels,
            config,
            [generators[i] for i in group],
            progress,
            _group_hook(hook, group),
            None if on_step is None else partial(_group_step, on_step, group),
            use_compiled=use_compiled,
            use_graph=use_graph,
            saves=partial(progress_file.epoch_done, g),
            resume=progress_file.group(g),
        )
        if len(members) > 1:
            for dst, src in zip(members, unstack_convnet(packed)):
                dst.load_state_dict(src.state_dict())
        progress_file.group_finished(g, dict(zip(group, members)))
        stats.steps = max(stats.steps, steps)
    return stats


def _fit_one(
    module: nn.Module,
    replicas: int,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    generators: Sequence[torch.Generator],
    progress: Callable[[int], None] | None,
    hook: EpochHook | None,
    on_step: StepHook | None,
    *,
    use_compiled: bool,
    use_graph: bool,
    saves: Callable[..., None],
    resume: dict | None,
) -> int:
    device = images.device
    module.train()
    # the odd-sized last batch of an epoch runs eagerly rather than compiling (or capturing) a second graph
    fast = compiled(module) if use_compiled else module
    params = [p for p in module.parameters() if p.requires_grad]
    opt = SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    n = len(images)
    bs = min(config.batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    ops = parse_strategy(config.augment) if config.augment else None
    # every batch is the whole set: order cannot change the mean gradient (but each replica augments its own)
    whole_set = steps_per_epoch == 1 and ops is None

    def sgd_step(idx: torch.Tensor | None) -> torch.Tensor:
        """One step on the images that ``idx`` [M, b] selects for each replica (None: all of them)."""
        if idx is None:
            x, y = images, labels.unsqueeze(1).expand(n, replicas)
        else:
            picked = images[idx]  # [M, b, C, H, W]
            if ops is not None:
                picked = torch.stack([augment_batch(picked[m], ops, generators[m]) for m in range(replicas)])
            x = picked.transpose(0, 1).flatten(1, 2)  # [b, M*C, H, W]: replica m reads its own images
            y = labels[idx].t()
        with autocast(config.precision, device, cache=not use_graph):
            out = fast(x) if len(x) == bs else module(x)
        out = out.float().reshape(len(x), replicas, -1)
        if on_step is not None:
            for m in range(replicas):
                on_step(m, torch.arange(n, device=device) if idx is None else idx[m], out[:, m].detach())
        # sum over replicas of each replica's mean loss: each replica gets exactly its own gradient
        per_sample = F.cross_entropy(out.flatten(0, 1), y.reshape(-1), reduction="none").view(-1, replicas)
        loss = per_sample.mean(0)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        # detached: a live autograd graph would keep the parameters' gradient accumulators, and the stream
        # they were made on, into the next step (a stream mismatch, which PyTorch warns about, when that step
        # is the capture)
        return loss.detach()

    graphed = _GraphedStep(sgd_step) if use_graph else None
    decay_at = config.decay_steps(steps_per_epoch)
    step, first_epoch = 0, 1
    if resume is not None:
        module.load_state_dict(resume["module"])
        opt.load_state_dict(resume["optimizer"])  # with the learning rate as decayed so far
        for g, state in zip(generators, resume["generators"]):
            g.set_state(state.cpu())
        step, first_epoch = resume["step"], resume["epoch"] + 1
        if progress is not None:
            for _ in range(resume["epoch"]):
                progress(replicas)
    for epoch in range(first_epoch, config.epochs + 1):
        if not whole_set:
            order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(device)
        for s in range(steps_per_epoch):
            if config.max_steps is not None and step >= config.max_steps:
                break
            if step in decay_at:
                for g in opt.param_groups:
                    g["lr"] *= config.lr_decay
                if graphed is not None:
                    graphed.reset()  # the captured steps hold the old learning rate
            idx = None if whole_set else order[:, s * bs : (s + 1) * bs]
            if graphed is not None and (idx is None or idx.shape[1] == bs):
                graphed(idx)
            else:
                sgd_step(idx)
            step += 1
        if progress is not None:
            progress(replicas)  # one epoch of every packed network
        if hook is not None and epoch in hook.epochs:
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # a replayed graph may still be writing the parameters
            hook.fn(epoch, range(replicas), unstack_convnet(module) if replicas > 1 else [module])
        saves(epoch, step, module, opt, generators)
    return step


def _group_step(on_step: StepHook, group: Sequence[int], replica: int, idx, logits) -> None:
    on_step(group[replica], idx, logits)


def _group_hook(hook: EpochHook | None, group: Sequence[int]) -> EpochHook | None:
    """``hook`` with the indices of one packed group translated back to ``fit``'s module indices."""
    if hook is None:
        return None
    return EpochHook(hook.epochs, lambda epoch, idx, nets: hook.fn(epoch, [group[i] for i in idx], nets))


def build_seeded(builder: Callable[[], nn.Module], seed: int, device: torch.device) -> nn.Module:
    """``builder()`` initialised from ``seed``, leaving the global random state as it was."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return builder().to(device)


def train_from_scratch(
    builder: Callable[[], nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    *,
    seeds: Sequence[int],
    progress: Callable[[int], None] | None = None,
    hook: EpochHook | None = None,
    on_step: StepHook | None = None,
    checkpoint: Checkpoint | None = None,
) -> list[nn.Module]:
    """Build one network per seed (the seed fixes its initialisation and its data order) and train them
    (``checkpoint``: resumably, see :func:`fit`)."""
    device = images.device
    modules = []
    for seed in seeds:
        modules.append(build_seeded(builder, seed, device))
    generators = [torch.Generator().manual_seed(seed + 1_000_003) for seed in seeds]
    fit(
        modules,
        images,
        labels,
        config,
        generators=generators,
        progress=progress,
        hook=hook,
        on_step=on_step,
        checkpoint=checkpoint,
    )
    return modules
