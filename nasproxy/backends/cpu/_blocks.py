"""How the CPU backend rewrites a ConvNet's blocks (see the package's docstring)."""

from __future__ import annotations

import torch
from torch import nn

from nasproxy.backends.cpu import _first_block
from nasproxy.backends.cpu._pooling import AvgPool2x2, MaxPool2x2
from nasproxy.backends.cpu._winograd import WinogradConv3x3, shape_fits
from nasproxy.models._convnet import GROUPNORM_GROUPS, ConvNet, ConvNetSpec


class FusedFeatures(nn.Sequential):
    """A single ConvNet's blocks (same children, same state-dict keys). On a network input where the fused
    kernels are exact (:func:`_first_block.network_input_fusable`), the first block and every later instance
    norm, activation and pooling run fused; otherwise each block runs its modules."""

    def __init__(self, blocks: list[nn.Sequential], spec: ConvNetSpec) -> None:
        super().__init__(*blocks)
        self.spec = spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _first_block.network_input_fusable(x):
            return super().forward(x)
        spec = self.spec
        for i, block in enumerate(self):
            conv = block[0]
            if i == 0 and _first_block.applies(x, conv, spec.pool):
                norm = block[1] if spec.norm != "none" else None
                x = _first_block.first_block(
                    x, conv, norm, norm=spec.norm, groups=GROUPNORM_GROUPS, act=spec.act, pool=spec.pool
                )
            elif i > 0 and spec.norm == "instance" and _first_block.poolable(x, spec.pool):
                x = _first_block.instance_tail(conv(x), block[1], act=spec.act, pool=spec.pool)
            else:
                x = block(x)
        return x


def _winograd_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """``conv`` as a Winograd convolution sharing its parameters, where its shape allows one."""
    if type(conv) is not nn.Conv2d or not shape_fits(conv):
        return conv
    fast = WinogradConv3x3(conv.in_channels, conv.out_channels, 3, padding=1, bias=conv.bias is not None, device="meta")
    fast.weight = conv.weight
    fast.bias = conv.bias
    return fast


def _fast_block(block: nn.Sequential) -> nn.Sequential:
    """The block's modules with faster pooling, a max pooling moved before the activation, and a Winograd
    convolution; parameter-free modules are the only ones that move, so state-dict keys stay."""
    layers = list(block)
    layers[0] = _winograd_conv(layers[0])
    for i, layer in enumerate(layers):
        if type(layer) is nn.MaxPool2d:
            layers[i - 1], layers[i] = MaxPool2x2(), layers[i - 1]  # [..., act, pool] -> [..., pool, act]
        elif type(layer) is nn.AvgPool2d:
            layers[i] = AvgPool2x2()
    return nn.Sequential(*layers)


def apply(module: nn.Module) -> nn.Module:
    """Rewrite every ConvNet in ``module`` (itself included) for the CPU backend, in place; returns
    ``module``. Applying twice changes nothing."""
    for net in [m for m in module.modules() if isinstance(m, ConvNet)]:
        blocks = [_fast_block(block) for block in net.features]
        net.features = FusedFeatures(blocks, net.spec) if net.replicas == 1 else nn.Sequential(*blocks)
    return module
