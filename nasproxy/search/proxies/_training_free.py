"""Training-free proxies: a score of the untrained network on one seeded minibatch of real training images,
computed as its authors' reference code does (SamsungLabs/zero-cost-nas for synflow, snip and grad_norm;
BayesWatch/nas-without-training for NASWOT)."""

from __future__ import annotations

import math
import time
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nasproxy._errors import NasproxyError
from nasproxy.engine import build_seeded
from nasproxy.models import ConvNet
from nasproxy.search.proxies._base import Proxy, Score, register_proxy
from nasproxy.search.proxies._training import builder


class TrainingFree(Proxy):
    """Scores a freshly initialised network (seed ``protocol.seed``) on ``protocol.zero_cost_batch`` training
    images. It runs on PyTorch's own operators (backend aten): the scores hook and transform its layers."""

    default_epochs = 0
    default_repeats = 1

    @staticmethod
    def measure(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        raise NotImplementedError

    def score(self, space, cand, dataset, protocol, condensed, runtime) -> Score:
        device = runtime.device
        net = build_seeded(builder(space, cand, dataset), protocol.seed, device)
        g = torch.Generator().manual_seed(protocol.seed)
        idx = torch.randperm(len(dataset.train_images), generator=g)[: protocol.zero_cost_batch]
        x, y = dataset.train_images[idx].to(device), dataset.train_labels[idx].to(device)
        start = time.perf_counter()
        value = float(self.measure(net, x, y))
        if not math.isfinite(value):
            value = -1e30  # degenerate networks (e.g. all-dead units) rank last
        return Score(value, {"train_seconds": time.perf_counter() - start, "seeds": [protocol.seed]})


def _layer_weights(net: nn.Module) -> list[torch.Tensor]:
    """The weights the zero-cost scores sum over, as SamsungLabs/zero-cost-nas does: those of convolutions
    and linear layers (no biases, no normalisation affines); a ConvNet's classifier is a linear layer."""
    weights = [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    weights += [m.classifier_weight for m in net.modules() if isinstance(m, ConvNet)]
    return weights


def _grad_norm(net, x, y):
    """Sum over layers of the norm of the loss gradient of each layer's weight (zero-cost-nas grad_norm)."""
    net.train()
    weights = _layer_weights(net)
    grads = torch.autograd.grad(F.cross_entropy(net(x), y), weights, allow_unused=True)
    return sum(g.norm() for g in grads if g is not None).item()


def _snip(net, x, y):
    """Sum of |weight x its loss gradient| over the layers' weights (Lee et al. 2019, as zero-cost-nas)."""
    net.train()
    weights = _layer_weights(net)
    grads = torch.autograd.grad(F.cross_entropy(net(x), y), weights, allow_unused=True)
    return sum((g * w).abs().sum() for g, w in zip(grads, weights) if g is not None).item()


def _synflow(net, x, y):
    """Tanaka et al. 2020 as zero-cost-nas computes it: every parameter and buffer made non-negative, double
    precision, normalisation in eval mode, one all-ones input; the sum over the layers' weights of
    |weight x d(sum of outputs)/d weight|."""
    net = net.double().eval()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    weights = _layer_weights(net)
    out = net(torch.ones_like(x[:1], dtype=torch.float64)).sum()
    grads = torch.autograd.grad(out, weights, allow_unused=True)
    return sum((g * w).abs().sum() for g, w in zip(grads, weights) if g is not None).item()


_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.GELU, nn.ELU, nn.SiLU, nn.Tanh)


def _code_points(net: nn.Module) -> list[nn.Module]:
    """Where NASWOT reads each unit's binary code: the input of every activation, at full resolution (a unit
    is on when its pre-activation is positive; for sigmoid that is an output above 0.5)."""
    return [m for m in net.modules() if isinstance(m, _ACTIVATIONS)]


def _naswot(net, x, y):
    """Mellor et al. 2021: log-determinant of the kernel K[i, j] = units on in both or off in both images."""
    codes: list[torch.Tensor] = []

    def hook(module, inputs):
        codes.append((inputs[0].detach().flatten(1) > 0).double())

    handles = [m.register_forward_pre_hook(hook) for m in _code_points(net)]
    try:
        with torch.no_grad():
            net.train()(x)
    finally:
        for h in handles:
            h.remove()
    if not codes:
        raise NasproxyError("naswot needs a network with activation modules (nn.ReLU, nn.Sigmoid, ...)")
    c = torch.cat(codes, dim=1)
    kernel = c @ c.t() + (1 - c) @ (1 - c).t()
    return torch.linalg.slogdet(kernel).logabsdet.item()


def _params(net, x, y):
    return sum(p.numel() for p in net.parameters())


@register_proxy
class SynFlow(TrainingFree):
    name = "synflow"
    description = "SynFlow (Tanaka et al. 2020), training-free"
    measure = staticmethod(_synflow)


@register_proxy
class NASWOT(TrainingFree):
    name = "naswot"
    description = "NASWOT activation-pattern score (Mellor et al. 2021), training-free"
    minibatch: ClassVar[int] = 128  # BayesWatch/nas-without-training's batch
    measure = staticmethod(_naswot)


@register_proxy
class SNIP(TrainingFree):
    name = "snip"
    description = "SNIP saliency (Lee et al. 2019), training-free"
    measure = staticmethod(_snip)


@register_proxy
class GradNorm(TrainingFree):
    name = "grad-norm"
    description = "gradient norm at initialisation, training-free"
    measure = staticmethod(_grad_norm)


@register_proxy
class Params(TrainingFree):
    name = "params"
    description = "parameter count, training-free"
    measure = staticmethod(_params)
