"""Dataset Condensation with Gradient Matching (Zhao, Mopuri, Bilen, ICLR 2021), Algorithm 1.

Each outer iteration draws a fresh randomly initialised network; for ``outer_loop`` steps it matches,
class by class, the gradient of the synthetic images' loss to that of a batch of real images, updates the
synthetic images, and trains the network on the synthetic images for ``inner_loop`` epochs.

Randomness is derived from ``(seed, iteration)``, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from nasproxy import augment
from nasproxy._errors import NasproxyError, NasproxyWarning, setting
from nasproxy._sections import untimed
from nasproxy.backends import apply_backend, check_backend, resolve_backend
from nasproxy.condensers._base import CondenseResult, RunContext, register_condenser
from nasproxy.condensers._learned import LearnedImages, mix, progress_bar
from nasproxy.condensers._matching import METRICS, ClassGradients, gradient_distance
from nasproxy.data import Dataset
from nasproxy.engine import (
    PRECISIONS,
    TrainConfig,
    build_seeded,
    fit,
    use_compile,
)
from nasproxy.models import model_builder

# (outer_loop T, inner_loop) per images-per-class, from the paper's appendix / the authors' code
PAPER_LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}
BN_STATS_IMAGES = 16  # real images per class used to set BatchNorm statistics before matching
# inner network steps of a whole run that pay for compiling them: one architecture, compiled once
DC_COMPILE_MIN_STEPS = 400


def paper_loops(ipc: int) -> tuple[int, int]:
    return PAPER_LOOPS.get(ipc, (ipc, max(1, 500 // ipc)))


@register_condenser
class DatasetCondensation(LearnedImages):
    """Gradient matching (Zhao, Mopuri & Bilen, ICLR 2021): learned synthetic images (`ours` in a search)."""

    name = "dc"

    @dataclass(frozen=True)
    class Config:
        iterations: int = 1000  # outer iterations K (fresh network each)
        model: str = "convnet"  # the network whose gradients are matched
        lr_img: float = 0.1  # SGD step size of the synthetic images
        momentum_img: float = 0.5
        lr_net: float = 0.01  # SGD step size of the inner network updates
        real_batch: int = 256  # real images per class per matching step
        syn_batch: int = 256  # batch size of the inner network updates
        outer_loop: int | None = None  # None: the paper's value for this ipc
        inner_loop: int | None = None
        metric: str = "layerwise"  # layerwise (eq. 10) | mse | cos
        init: str = "noise"  # noise | real
        precision: str = "fp32"  # fp32 | bf16 autocast for the network passes
        packed: bool | None = None  # all class gradients in one packed pass (ConvNet only); None: on CUDA only,
        # since grouped convolutions ran slower than a loop over the classes on the CPUs measured
        compile: bool | None = None  # torch.compile the first-order network passes; None: auto (long runs)
        checkpoint_every: int = 1  # outer iterations between checkpoints (a few hundred KB each; 1 loses nothing)
        backend: str = "auto"  # how the networks run (nasproxy.backends); recorded, not part of a resume's identity
        # Siamese augmentation of each matching step (DSA): None (DC), "auto" (DSA's strategy for the dataset)
        # or a strategy such as color_crop_cutout_flip_scale_rotate
        augment: str | None = None

        def __post_init__(self) -> None:
            if self.augment not in (None, "none", "auto"):
                augment.parse_strategy(self.augment)
            if self.metric not in METRICS:
                raise NasproxyError(f"unknown matching metric {self.metric!r}; choose one of {', '.join(METRICS)}")
            if self.init not in ("noise", "real"):
                raise NasproxyError(f"unknown init {self.init!r}; choose noise or real")
            if self.precision not in PRECISIONS:
                raise NasproxyError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
            if self.iterations < 0 or self.real_batch < 1:
                raise NasproxyError("iterations must be >= 0 and real batch >= 1")
            check_backend(self.backend)
            model_builder(self.model)  # an unknown model name fails now, not after loading the data

    def condense(self, dataset: Dataset, *, ipc: int, seed: int, context: RunContext) -> CondenseResult:
        cfg = self.config
        device = context.device
        backend = resolve_backend(cfg.backend, device)
        k = dataset.num_classes
        outer_loop, inner_loop = paper_loops(ipc)
        outer_loop = cfg.outer_loop or outer_loop
        inner_loop = cfg.inner_loop if cfg.inner_loop is not None else inner_loop
        build = model_builder(cfg.model)
        c, h, w = dataset.image_shape

        def make_net(iteration: int) -> nn.Module:
            net = build_seeded(
                partial(build, channels=c, num_classes=k, image_size=(h, w)), mix(seed, iteration, 1), device
            )
            return apply_backend(net, backend)

        by_class = [dataset.train_images[idx].to(device) for idx in dataset.class_indices()]
        # every class contributes the same number of real images to a matching step (the classes' gradients
        # are computed as one [K, n, ...] batch); a class smaller than --real-batch gives all of its images,
        # and the others as many, drawn without replacement: no image counts twice in a class's gradient
        real_batch = min(cfg.real_batch, min(len(x) for x in by_class))
        if real_batch < cfg.real_batch:
            warnings.warn(
                NasproxyWarning(
                    f"the smallest class has {real_batch} training images, fewer than {setting('real_batch')} "
                    f"{cfg.real_batch}: "
                    f"each matching step uses {real_batch} real images per class"
                ),
                stacklevel=2,
            )
        syn_labels = torch.arange(k, device=device).repeat_interleave(ipc)

        syn, opt_img, start, history, elapsed = self._start(context, dataset, ipc, seed, device)
        # one compile serves every outer iteration (each builds a network of the same architecture); it pays
        # after ~300-600 steps of the paper's ConvNet (see nasproxy.engine.COMPILE_MIN_STEPS)
        work = (cfg.iterations - start) * max(outer_loop - 1, 0) * inner_loop
        use_compiled = use_compile(cfg.compile, work, DC_COMPILE_MIN_STEPS, device, precision=cfg.precision)
        inner = TrainConfig(
            epochs=inner_loop,
            batch_size=cfg.syn_batch,
            lr=cfg.lr_net,
            momentum=0.0,
            weight_decay=0.0,
            lr_decay_epochs=(),
            precision=cfg.precision,
            compile=use_compiled,
            backend=backend,
        )

        packed = cfg.packed if cfg.packed is not None else device.type == "cuda"
        grads = ClassGradients(k, packed=packed, precision=cfg.precision, compile=use_compiled)
        bar = progress_bar(context.progress, total=cfg.iterations, initial=start)
        strategy = augment.resolve(cfg.augment, dataset.name)
        ops = augment.parse_strategy(strategy) if strategy else None
        t0 = time.perf_counter() - elapsed
        part = context.sections or untimed
        for it in range(start, cfg.iterations):
            with part("new network"):
                net = make_net(it)
                net.train()
            gen = torch.Generator().manual_seed(mix(seed, it, 3))
            aug_gen = torch.Generator().manual_seed(mix(seed, it, 4))
            has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
            loss_sum = torch.zeros((), device=device)
            for ol in range(outer_loop):
                with part("real images sampled"):
                    if has_bn:
                        _freeze_batchnorm(net, by_class, gen)
                    real = torch.stack([x[torch.randperm(len(x), generator=gen)[:real_batch]] for x in by_class])
                    real_labels = torch.arange(k, device=device)[:, None].expand(k, real.shape[1])
                    syn_by_class = syn.view(k, ipc, c, h, w)
                    if ops is not None:  # one draw per class, the same for its real and synthetic images
                        draw = augment.draw(k, ops, aug_gen)
                        real, syn_by_class = augment.apply(real, draw), augment.apply(syn_by_class, draw)
                with part("real-image gradients"):
                    g_real = [g.detach() for g in grads(net, real, real_labels, create_graph=False)]
                with part("synthetic-image gradients (with graph)"):
                    g_syn = grads(net, syn_by_class, syn_labels.view(k, ipc), create_graph=True)
                with part("matching loss, second-order backward, image step"):
                    loss = gradient_distance(g_real, g_syn, cfg.metric)
                    opt_img.zero_grad(set_to_none=True)
                    loss.backward()
                    opt_img.step()
                    loss_sum += loss.detach()
                # their autograd graph would keep the network's gradient accumulators alive into fit(), whose
                # CUDA graph capture wants them made afresh on its own stream
                del loss, g_syn
                if ol == outer_loop - 1:
                    break
                if inner_loop:  # fit() puts BatchNorm back in training mode, as the authors' inner loop does
                    with part("inner network updates"):
                        fit([net], syn.detach(), syn_labels, inner, generators=[gen])
            mean_loss = float(loss_sum) / (k * outer_loop)  # one host sync per outer iteration
            self._iteration_done(context, it, mean_loss, history, bar, (seed, ipc, dataset, syn, opt_img, t0))
        bar.close()
        return CondenseResult(
            images=syn.detach().cpu(),
            labels=syn_labels.cpu(),
            iterations_done=max(cfg.iterations, start),
            extra={
                "outer_loop": outer_loop,
                "inner_loop": inner_loop,
                "loss_history": history,
                "condense_seconds": time.perf_counter() - t0,
                "compiled": use_compiled,
                "backend": backend,
                "augment": strategy,
            },
        )


def _freeze_batchnorm(net: nn.Module, by_class: list[torch.Tensor], gen: torch.Generator) -> None:
    """Set BatchNorm statistics from a few real images of every class, then freeze them (authors' code)."""
    batch = torch.cat([x[torch.randperm(len(x), generator=gen)[:BN_STATS_IMAGES]] for x in by_class])
    net.train()
    with torch.no_grad():
        net(batch)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
