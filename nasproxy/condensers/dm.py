"""Distribution Matching (Zhao & Bilen, WACV 2023): synthetic images whose per-class mean embedding matches
the real images' under randomly initialised networks.

Each outer iteration draws a fresh network (frozen, in training mode, as the authors' code), embeds a batch
of real images and the synthetic images of every class (both augmented alike per class, DSA's Siamese
augmentation, by default) and takes one SGD step on the images against the sum over classes of the squared
distance between the two mean embeddings. No inner loop and no second-order gradients: an iteration costs
about two forward passes and one backward pass to the images, so DM runs many more of them (the authors:
20,000, image step size 1, momentum 0.5, 256 real images per class, initialised from real images).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import torch

from nasproxy import augment
from nasproxy._errors import NasproxyError
from nasproxy.backends import apply_backend, check_backend, resolve_backend
from nasproxy.condensers._base import CondenseResult, RunContext, register_condenser
from nasproxy.condensers._learned import LearnedImages, mix, progress_bar
from nasproxy.data import Dataset
from nasproxy.engine import build_seeded
from nasproxy.models import model_builder


@register_condenser
class DistributionMatching(LearnedImages):
    """Distribution matching (Zhao & Bilen, WACV 2023): per-class mean embeddings under random networks."""

    name = "dm"

    @dataclass(frozen=True)
    class Config:
        iterations: int = 20_000  # outer iterations (the authors'); each is one image update
        model: str = "convnet"  # the randomly initialised network whose embedding is matched (needs embed())
        lr_img: float = 1.0
        momentum_img: float = 0.5
        real_batch: int = 256  # real images per class per iteration
        init: str = "real"  # real | noise
        augment: str | None = "auto"  # Siamese augmentation per class (see nasproxy.augment); None: off
        checkpoint_every: int = 50
        backend: str = "auto"

        def __post_init__(self) -> None:
            if self.init not in ("noise", "real"):
                raise NasproxyError(f"unknown init {self.init!r}; choose noise or real")
            if self.iterations < 0 or self.real_batch < 1 or self.checkpoint_every < 1:
                raise NasproxyError("iterations must be >= 0, real batch and checkpoint_every >= 1")
            if self.augment not in (None, "none", "auto"):
                augment.parse_strategy(self.augment)
            check_backend(self.backend)
            model_builder(self.model)

    def condense(self, dataset: Dataset, *, ipc: int, seed: int, context: RunContext) -> CondenseResult:
        cfg = self.config
        device = context.device
        backend = resolve_backend(cfg.backend, device)
        k = dataset.num_classes
        c, h, w = dataset.image_shape
        build = partial(model_builder(cfg.model), channels=c, num_classes=k, image_size=(h, w))
        by_class = [dataset.train_images[idx].to(device) for idx in dataset.class_indices()]
        real_batch = min(cfg.real_batch, min(len(x) for x in by_class))
        strategy = augment.resolve(cfg.augment, dataset.name)
        ops = augment.parse_strategy(strategy) if strategy else None

        syn, opt_img, start, history, elapsed = self._start(context, dataset, ipc, seed, device)

        bar = progress_bar(context.progress, total=cfg.iterations, initial=start)
        t0 = time.perf_counter() - elapsed
        for it in range(start, cfg.iterations):
            net = apply_backend(build_seeded(build, mix(seed, it, 1), device), backend)
            if not hasattr(net, "embed"):
                raise NasproxyError(f"dm needs a network with an embedding (a ConvNet), not {cfg.model!r}")
            net.train()
            for p in net.parameters():
                p.requires_grad_(False)
            gen = torch.Generator().manual_seed(mix(seed, it, 3))
            real = torch.stack([x[torch.randperm(len(x), generator=gen)[:real_batch]] for x in by_class])
            syn_by_class = syn.view(k, ipc, c, h, w)
            if ops is not None:  # one draw per class, the same for its real and synthetic images
                draw = augment.draw(k, ops, torch.Generator().manual_seed(mix(seed, it, 4)))
                real, syn_by_class = augment.apply(real, draw), augment.apply(syn_by_class, draw)
            with torch.no_grad():
                mean_real = net.embed(real.flatten(0, 1)).view(k, real_batch, -1).mean(1)
            mean_syn = net.embed(syn_by_class.flatten(0, 1)).view(k, ipc, -1).mean(1)
            loss = ((mean_real - mean_syn) ** 2).sum()
            opt_img.zero_grad(set_to_none=True)
            loss.backward()
            opt_img.step()
            self._iteration_done(context, it, loss.item() / k, history, bar, (seed, ipc, dataset, syn, opt_img, t0))
        bar.close()
        return CondenseResult(
            images=syn.detach().cpu(),
            labels=torch.arange(k).repeat_interleave(ipc),
            iterations_done=max(cfg.iterations, start),
            extra={
                "loss_history": history,
                "condense_seconds": time.perf_counter() - t0,
                "backend": backend,
                "augment": strategy,
            },
        )
