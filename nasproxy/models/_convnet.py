"""The ConvNet family of the paper: ``[W, N, A, P] x D`` blocks and a linear classifier.

One class builds every member. ``replicas`` packs M independent networks of the same spec into one
module: each conv becomes a grouped conv (groups=M), each norm acts per replica, and the classifier is a
batched matmul. Training M replicas this way is numerically the same as training M separate networks
(each sees only its own channels), but it runs as a few large kernels instead of many small ones, which
is what makes repeats, evaluation models and the condenser's per-class gradients cheap.

A ConvNet is made of standard layers only: ``features`` holds one ``nn.Sequential`` per block (conv, norm,
activation, pooling, the paper's order). How they run is a backend's choice (``nasproxy.backends``): the
CPU backend swaps in fused and faster modules that compute the same function.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasproxy._errors import NasproxyError

NORMS = ("none", "batch", "layer", "instance", "group")
ACTS = ("sigmoid", "relu", "leakyrelu")
POOLS = ("none", "max", "avg")
GROUPNORM_GROUPS = 4  # the paper's "group" normalisation


@dataclass(frozen=True)
class ConvNetSpec:
    """One ConvNet architecture. Defaults are the paper's ConvNet (W128 D3, instance norm, ReLU, avg-pool)."""

    width: int = 128  # channels of every conv layer
    depth: int = 3  # number of conv-norm-act-pool blocks
    norm: str = "instance"  # none | batch | layer | instance | group (4 groups)
    act: str = "relu"  # sigmoid | relu | leakyrelu (slope 0.01)
    pool: str = "avg"  # none | max | avg (2x2, stride 2)

    def __post_init__(self) -> None:
        for field, value, choices in (("norm", self.norm, NORMS), ("act", self.act, ACTS), ("pool", self.pool, POOLS)):
            if value not in choices:
                raise NasproxyError(f"ConvNet {field} {value!r} is not one of {', '.join(choices)}")
        if self.width < 1 or self.depth < 1:
            raise NasproxyError(f"ConvNet width and depth must be >= 1, got W{self.width} D{self.depth}")
        if self.norm == "group" and self.width % GROUPNORM_GROUPS:
            raise NasproxyError(f"group norm needs a width divisible by {GROUPNORM_GROUPS}, got {self.width}")

    @property
    def arch_id(self) -> str:
        """Deterministic, human-readable id, e.g. ``convnet-w128-d3-instance-relu-avg``."""
        return f"convnet-w{self.width}-d{self.depth}-{self.norm}-{self.act}-{self.pool}"


class _LayerNorm(nn.Module):
    """LayerNorm over (C, H, W) of each replica, as ``nn.LayerNorm([C, H, W])`` does for one network."""

    def __init__(self, replicas: int, channels: int, height: int, width: int) -> None:
        super().__init__()
        self.replicas = replicas
        self.eps = 1e-5
        self.weight = nn.Parameter(torch.ones(replicas * channels, height, width))
        self.bias = nn.Parameter(torch.zeros(replicas * channels, height, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.replicas == 1:  # the fused native kernel: several times faster than the broadcast affine below
            return F.layer_norm(x, tuple(x.shape[1:]), self.weight, self.bias, eps=self.eps)
        return F.group_norm(x, self.replicas, eps=self.eps) * self.weight + self.bias


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "leakyrelu":
        return nn.LeakyReLU(0.01, inplace=True)
    return nn.Sigmoid()


class ConvNet(nn.Module):
    """``replicas`` independent ConvNets of one spec.

    Input: ``[B, C, H, W]`` (every replica sees the same images) or ``[B, M*C, H, W]`` (replica m sees
    channels ``m*C:(m+1)*C``). Output: ``[B, K]`` for one replica, ``[B, M, K]`` otherwise.
    """

    def __init__(
        self,
        spec: ConvNetSpec,
        *,
        channels: int,
        num_classes: int,
        image_size: tuple[int, int],
        replicas: int = 1,
    ) -> None:
        super().__init__()
        self.spec, self.channels, self.num_classes, self.replicas = spec, channels, num_classes, replicas
        self.image_size = tuple(image_size)
        m, w = replicas, spec.width
        h, wd = image_size
        # The authors pad 28x28 inputs to 32x32 at the first conv. Padding the input and convolving with
        # padding 1 computes the same thing, and oneDNN's weight gradient for a padding wider than the kernel's
        # reach is several times slower (results/bench/engine-choices.md).
        self.input_pad = 2 if (channels == 1 and h == 28) else 0
        h, wd = h + 2 * self.input_pad, wd + 2 * self.input_pad
        blocks: list[nn.Module] = []
        in_ch = channels
        flops = 0
        for d in range(spec.depth):
            block = [nn.Conv2d(m * in_ch, m * w, kernel_size=3, padding=1, groups=m)]
            flops += 2 * 9 * in_ch * w * h * wd
            if spec.norm == "batch":
                block.append(nn.BatchNorm2d(m * w))
            elif spec.norm == "instance":
                block.append(nn.GroupNorm(m * w, m * w))
            elif spec.norm == "group":
                block.append(nn.GroupNorm(m * GROUPNORM_GROUPS, m * w))
            elif spec.norm == "layer":
                block.append(_LayerNorm(m, w, h, wd))
            if spec.pool != "none" and (h < 2 or wd < 2):
                raise NasproxyError(
                    f"{spec.arch_id} pools a {h}x{wd} feature map at depth {d + 1}; use a smaller depth "
                    "or no pooling for these image sizes"
                )
            block.append(_activation(spec.act))
            if spec.pool == "max":
                block.append(nn.MaxPool2d(2, 2))
            elif spec.pool == "avg":
                block.append(nn.AvgPool2d(2, 2))
            if spec.pool != "none":
                h, wd = h // 2, wd // 2
            in_ch = w
            blocks.append(nn.Sequential(*block))
        self.features = nn.Sequential(*blocks)
        self.feature_dim = w * h * wd
        # multiply-adds x 2 of the convolutions and the classifier, one replica, one image
        self.flops_per_image = flops + 2 * self.feature_dim * num_classes
        # replica r's classifier is rows r*K:(r+1)*K, so every parameter stacks along dim 0
        classifier = [nn.Linear(self.feature_dim, num_classes) for _ in range(m)]
        self.classifier_weight = nn.Parameter(torch.cat([c.weight.detach() for c in classifier]))
        self.classifier_bias = nn.Parameter(torch.cat([c.bias.detach() for c in classifier]))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """What the classifier sees: the last block's output, flattened (``[B, M * feature_dim]``)."""
        if self.input_pad:
            x = F.pad(x, (self.input_pad,) * 4)
        if self.replicas > 1 and x.shape[1] == self.channels:
            # shared input: one dense conv with all replicas' filters computes every replica's first layer
            conv, *rest = self.features[0]
            x = F.conv2d(x, conv.weight, conv.bias, padding=conv.padding)
            for layer in [*rest, *self.features[1:]]:
                x = layer(x)
        else:
            x = self.features(x)
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        if self.replicas == 1:
            return F.linear(x, self.classifier_weight, self.classifier_bias)
        m, k = self.replicas, self.num_classes
        feats = x.reshape(x.shape[0], m, self.feature_dim).transpose(0, 1)
        weight = self.classifier_weight.view(m, k, self.feature_dim).transpose(1, 2)
        return torch.baddbmm(self.classifier_bias.view(m, 1, k), feats, weight).transpose(0, 1)


def stack_convnets(nets: list[ConvNet]) -> ConvNet:
    """Pack single-replica ConvNets of one spec into one replicated ConvNet (parameters and buffers copied)."""
    first = nets[0]
    packed = ConvNet(
        first.spec,
        channels=first.channels,
        num_classes=first.num_classes,
        image_size=first.image_size,
        replicas=sum(n.replicas for n in nets),
    ).to(next(first.parameters()).device)
    states = [n.state_dict() for n in nets]
    merged = {}
    for key, value in states[0].items():
        merged[key] = value if value.dim() == 0 else torch.cat([s[key] for s in states])
    packed.load_state_dict(merged)
    return packed


def unstack_convnet(packed: ConvNet) -> list[ConvNet]:
    """The inverse of :func:`stack_convnets`: one single-replica ConvNet per replica."""
    m = packed.replicas
    nets = []
    state = packed.state_dict()
    for r in range(m):
        net = ConvNet(
            packed.spec,
            channels=packed.channels,
            num_classes=packed.num_classes,
            image_size=packed.image_size,
        ).to(next(packed.parameters()).device)
        net.load_state_dict({k: v if v.dim() == 0 else v.chunk(m)[r].clone() for k, v in state.items()})
        nets.append(net)
    return nets


def per_replica(tensor: torch.Tensor, replicas: int) -> torch.Tensor:
    """View a replicated parameter (or its gradient) as ``[M, *single_network_shape]``."""
    return tensor.unflatten(0, (replicas, -1))
