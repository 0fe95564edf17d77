"""Ways to score one architecture ("proxies"): train on a proxy file, early-stopped or full real-data
training, or a training-free (zero-cost) score. Each registers itself in ``PROXIES``."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasproxy._artifact import Proxy
from nasproxy._errors import NasproxyError
from nasproxy._registry import Registry
from nasproxy.condensers import CONDENSERS
from nasproxy.data import Dataset
from nasproxy.engine import EpochHook, TrainConfig, accuracy, build_seeded, train_from_scratch
from nasproxy.models import ConvNet
from nasproxy.spaces import Candidate, SearchSpace


@dataclass(frozen=True)
class Protocol:
    """Everything that determines a trial's score. Its hash names the study, so changing any of it starts
    a new study instead of mixing incomparable numbers."""

    proxy: str  # a name in PROXIES
    dataset: str
    holdout: int
    split_seed: int
    val_fingerprint: str
    proxy_file: str | None = None  # content hash of the proxy file, for file-based proxies
    proxy_images: int = 0  # images in the proxy file (sets the early-stopping budget)
    epochs: int = 100
    repeats: int = 5
    batch_size: int = 256
    lr: float = 0.01
    precision: str = "fp32"
    seed: int = 0
    zero_cost_batch: int = 64
    # also score every trained network on the test set: the ground truth (full) needs it; ranking by a proxy
    # needs only the validation images (the paper's protocol), and the test set is twice their size
    score_test: bool = False

    def train_config(self, **overrides) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, precision=self.precision, **overrides
        )


@dataclass(frozen=True)
class Runtime:
    """Where and how a candidate is scored: the device and the resolved backend (nasproxy.backends). Neither
    changes what is computed beyond float rounding, so neither is part of the protocol; trials record both."""

    device: torch.device
    backend: str = "aten"


@dataclass
class Score:
    value: float  # what the search ranks by (validation accuracy, or the zero-cost score)
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProxyKind:
    score: Callable[[SearchSpace, Candidate, Dataset, Protocol, Proxy | None, Runtime], Score]
    needs_file: bool = False
    default_epochs: int = 100
    default_repeats: int = 5
    scores_test: bool = False  # the default of Protocol.score_test for this kind
    description: str = ""


PROXIES: Registry[ProxyKind] = Registry("proxy")

# The ground truth: every architecture trained on the whole training set (minus the hold-out) FULL_REPEATS
# times, so that a report can measure the truth's own noise (its repeat-vs-repeat rank correlation, the ceiling
# of any proxy). FULL_EPOCHS: 4 passes over 55,000 Fashion-MNIST images are 860 SGD steps of 256, the learning
# rate divided by 10 after 2 of them as in every nasproxy training; each network is also scored after half
# the epochs, so that the report shows whether the ranking had settled by then (`results/fashion-mnist-nas/`
# measures it). On a 2-core CPU a W <= 64 ConvNet takes about 25 s per epoch, so 60 architectures x 3 networks
# x 4 epochs are about 5 hours; pass --epochs for a longer ground truth on a GPU.
FULL_EPOCHS = 4
FULL_REPEATS = 3
# a proxy file of every registered condenser is a proxy of the same name; "ours" is the paper's name for DC
FILE_PROXY_METHODS = {"ours": "dc", **{name: name for name in CONDENSERS.names()}}


def _builder(space: SearchSpace, cand: Candidate, dataset: Dataset):
    c, h, w = dataset.image_shape
    return lambda: space.build(cand.spec, channels=c, num_classes=dataset.num_classes, image_size=(h, w))


def _train_and_score(
    space, cand, dataset, protocol, images, labels, config, runtime, *, score_half: bool = False
) -> Score:
    """Train ``protocol.repeats`` seeded networks and rank by their mean validation accuracy. ``score_half``
    also scores them after half the epochs (before the learning-rate decay), so that a report can tell
    whether the ranking had settled by then."""
    seeds = [protocol.seed + r for r in range(protocol.repeats)]
    device, config = runtime.device, dataclasses.replace(config, backend=runtime.backend)
    val_images, val_labels = dataset.val_images.to(device), dataset.val_labels.to(device)
    half_epoch = config.epochs // 2
    val_half = [math.nan] * len(seeds)
    hook = None
    if score_half and half_epoch >= 1:

        def at_half(epoch, indices, nets):
            scored = accuracy(nets, val_images, val_labels, precision=protocol.precision, backend=runtime.backend)
            for i, acc in zip(indices, scored):
                val_half[i] = acc

        hook = EpochHook(frozenset({half_epoch}), at_half)
    start = time.perf_counter()
    nets = train_from_scratch(
        _builder(space, cand, dataset), images.to(device), labels.to(device), config, seeds=seeds, hook=hook
    )
    train_seconds = time.perf_counter() - start
    score = partial(accuracy, nets, precision=protocol.precision, compile=config.compile, backend=runtime.backend)
    val = score(val_images, val_labels)
    mean = sum(val) / len(val)
    std = math.sqrt(sum((v - mean) ** 2 for v in val) / len(val))
    seen = len(images) if config.max_steps is None else min(len(images), config.max_steps * config.batch_size)
    attrs = {"val_accs": val, "val_std": std, "seeds": seeds, "train_seconds": train_seconds, "train_images": seen}
    if hook is not None:
        attrs.update(half_epochs=half_epoch, val_accs_half=val_half)
    if protocol.score_test:
        test = score(dataset.test_images.to(device), dataset.test_labels.to(device))
        attrs.update(test_accs=test, test_mean=sum(test) / len(test))
    return Score(mean, attrs)


def _file_proxy(space, cand, dataset, protocol, proxy, runtime) -> Score:
    return _train_and_score(
        space, cand, dataset, protocol, proxy.images, proxy.labels, protocol.train_config(), runtime
    )


def early_stopping_steps(protocol: Protocol) -> tuple[int, int]:
    """(SGD steps, batch size) of proxy training, which early-stopping spends on the real training set."""
    n = protocol.proxy_images
    batch = min(protocol.batch_size, n)
    return protocol.epochs * math.ceil(n / batch), batch


def _early_stopping(space, cand, dataset, protocol, proxy, runtime) -> Score:
    steps, batch = early_stopping_steps(protocol)
    epochs = math.ceil(steps / math.ceil(len(dataset.train_images) / batch))
    config = TrainConfig(epochs=epochs, batch_size=batch, lr=protocol.lr, precision=protocol.precision, max_steps=steps)
    return _train_and_score(space, cand, dataset, protocol, dataset.train_images, dataset.train_labels, config, runtime)


def _full(space, cand, dataset, protocol, proxy, runtime) -> Score:
    return _train_and_score(
        space,
        cand,
        dataset,
        protocol,
        dataset.train_images,
        dataset.train_labels,
        protocol.train_config(),
        runtime,
        score_half=True,
    )


PROXIES.register(
    "early-stopping",
    ProxyKind(
        _early_stopping,
        default_epochs=100,
        default_repeats=5,
        description="the real training set for as many SGD steps (and batch size) as proxy training takes",
    ),
)
PROXIES.register(
    "full",
    ProxyKind(
        _full,
        default_epochs=FULL_EPOCHS,
        default_repeats=FULL_REPEATS,
        scores_test=True,
        description="the whole real training set: the ground truth",
    ),
)
for _name in FILE_PROXY_METHODS:
    PROXIES.register(
        _name,
        ProxyKind(
            _file_proxy,
            needs_file=True,
            description=f"train on a proxy file made by `nasproxy condense --method {FILE_PROXY_METHODS[_name]}`",
        ),
    )


# --- training-free proxies, scored on one seeded minibatch of real training images --------------------------


def _minibatch(dataset: Dataset, protocol: Protocol, device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(protocol.seed)
    idx = torch.randperm(len(dataset.train_images), generator=g)[: protocol.zero_cost_batch]
    return dataset.train_images[idx].to(device), dataset.train_labels[idx].to(device)


def _fresh(space, cand, dataset, protocol, device) -> nn.Module:
    return build_seeded(_builder(space, cand, dataset), protocol.seed, device)


def _zero_cost(fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], float]):
    def score(space, cand, dataset, protocol, proxy, runtime) -> Score:
        # on PyTorch's own operators (backend aten): the scores hook and transform the network's layers
        net = _fresh(space, cand, dataset, protocol, runtime.device)
        x, y = _minibatch(dataset, protocol, runtime.device)
        start = time.perf_counter()
        value = float(fn(net, x, y))
        if not math.isfinite(value):
            value = -1e30  # degenerate networks (e.g. all-dead units) rank last
        return Score(value, {"train_seconds": time.perf_counter() - start, "seeds": [protocol.seed]})

    return score


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


for _name, _fn, _desc in (
    ("synflow", _synflow, "SynFlow (Tanaka et al. 2020), training-free"),
    ("naswot", _naswot, "NASWOT activation-pattern score (Mellor et al. 2021), training-free"),
    ("snip", _snip, "SNIP saliency (Lee et al. 2019), training-free"),
    ("grad-norm", _grad_norm, "gradient norm at initialisation, training-free"),
    ("params", _params, "parameter count, training-free"),
):
    PROXIES.register(_name, ProxyKind(_zero_cost(_fn), default_epochs=0, default_repeats=1, description=_desc))
