"""The ConvNet family of the paper: ``[W, N, A, P] x D`` blocks and a linear classifier.

One class builds every member. ``replicas`` packs M independent networks of the same spec into one
module: each conv becomes a grouped conv (groups=M), each norm acts per replica, and the classifier is a
batched matmul. Training M replicas this way is numerically the same as training M separate networks
(each sees only its own channels), but it runs as a few large kernels instead of many small ones, which
is what makes repeats, evaluation models and the condenser's per-class gradients cheap.

On CPUs in fp32 a single network runs its first block, and the instance norm, activation and pooling after
each later convolution, through fused C++ kernels (``_first_block``), and its later 3x3 convolutions as
Winograd convolutions (``_winograd``); both compute the same function as the modules, to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasproxy._errors import NasproxyError
from nasproxy.models import _first_block
from nasproxy.models._winograd import Conv3x3

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


def _even_cpu_map(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dim() == 4 and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0


class _MaxPool2x2Function(torch.autograd.Function):
    """2x2/stride-2 max pooling of an even-sized NCHW map as strided maxima, with max_pool2d's gradient
    (the first maximum of each window in row-major order takes it).

    ATen's CPU ``max_pool2d`` spends ~40 ms on a 100x128x32x32 map here (a branchy scalar loop);
    this takes 17 ms forward and backward in fp32, and 4 ms forward alone. The first-order backward runs in
    fp32 also for bf16 maps: ATen's bf16 kernels writing into strided outputs were 3-4x slower than fp32's
    (a bf16 training step of a W128 D1 max-pool ConvNet: 61.6 ms, 48.5 ms with the fp32 backward). It only
    copies and zeroes gradient values, so the result is the same in either precision.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        left, right = x[..., 0::2], x[..., 1::2]
        columns = torch.maximum(left, right).view(n, c, h // 2, 2, w // 2)
        top, bottom = columns[:, :, :, 0], columns[:, :, :, 1]
        if ctx.needs_input_grad[0]:
            # strict comparisons: on a tie the left column and the top row win, as in max_pool2d
            mask_dtype = torch.promote_types(x.dtype, torch.float32)
            ctx.save_for_backward((right > left).to(mask_dtype), (bottom > top).to(mask_dtype))
        return torch.maximum(top, bottom)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        right_wins, bottom_wins = ctx.saved_tensors
        n, c, h2, w2 = grad.shape
        if torch.is_grad_enabled():  # a double backward (gradient matching) differentiates this: no out= ops
            bottom, right = bottom_wins.bool(), right_wins.bool()
            rows = torch.stack([grad.where(~bottom, 0.0), grad.where(bottom, 0.0)], 3).view(n, c, 2 * h2, w2)
            return torch.stack([rows.where(~right, 0.0), rows.where(right, 0.0)], -1).view(n, c, 2 * h2, 2 * w2)
        dtype = grad.dtype
        grad = grad.to(right_wins.dtype)
        rows = grad.new_empty(n, c, h2, 2, w2)
        torch.mul(grad, bottom_wins, out=rows[:, :, :, 1])
        torch.sub(grad, rows[:, :, :, 1], out=rows[:, :, :, 0])
        rows = rows.view(n, c, 2 * h2, w2)
        grad_x = grad.new_empty(n, c, 2 * h2, 2 * w2)
        torch.mul(rows, right_wins, out=grad_x[..., 1::2])
        torch.sub(rows, grad_x[..., 1::2], out=grad_x[..., 0::2])
        return grad_x.to(dtype)


class _MaxPool2x2(nn.Module):
    """``nn.MaxPool2d(2, 2)``; on CPUs, even-sized maps take :class:`_MaxPool2x2Function`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _even_cpu_map(x):
            return _MaxPool2x2Function.apply(x.contiguous())
        return F.max_pool2d(x, 2, 2)

    def extra_repr(self) -> str:
        return "kernel_size=2, stride=2"


class _AvgPool2x2Function(torch.autograd.Function):
    """2x2/stride-2 average pooling of an even-sized NCHW map as two strided sums.

    ATen's CPU ``avg_pool2d`` took 16.6 ms forward and 44.7 ms forward and backward on a 100x128x32x32 map
    (Xeon here); this takes 4.0 ms forward and ~11 ms both ways. The sum adds each window's columns first,
    so values differ from ``avg_pool2d``'s by float rounding only. The backward is made of differentiable
    operations, so gradient matching can differentiate through it again.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        columns = (x[..., 0::2] + x[..., 1::2]).view(n, c, h // 2, 2, w // 2)
        return (columns[:, :, :, 0] + columns[:, :, :, 1]).mul_(0.25)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        n, c, h2, w2 = grad.shape
        # widen, then heighten: two small copies run 2x faster than one 6-d expand
        rows = (grad * 0.25).unsqueeze(-1).expand(n, c, h2, w2, 2).reshape(n, c, h2, 1, 2 * w2)
        return rows.expand(n, c, h2, 2, 2 * w2).reshape(n, c, 2 * h2, 2 * w2)


class _AvgPool2x2(nn.Module):
    """``nn.AvgPool2d(2, 2)``; on CPUs, even-sized fp32 maps take :class:`_AvgPool2x2Function`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in bf16 the two-step sum would round twice where ATen accumulates in fp32 and rounds once
        if _even_cpu_map(x) and x.dtype in (torch.float32, torch.float64):
            return _AvgPool2x2Function.apply(x.contiguous())
        return F.avg_pool2d(x, 2, 2)

    def extra_repr(self) -> str:
        return "kernel_size=2, stride=2"


def _hooked(modules: nn.Module) -> bool:
    """Whether a forward hook would see these modules' outputs (e.g. NASWOT's activation codes): the fused
    first block does not call its modules, so hooked ones must run as themselves."""
    if nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in modules)


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
        # reach is 3x slower (bf16, 27 vs 9 ms for 100 images here).
        self.input_pad = 2 if (channels == 1 and h == 28) else 0
        h, wd = h + 2 * self.input_pad, wd + 2 * self.input_pad
        blocks: list[nn.Module] = []
        self.block_starts = [0]  # features[block_starts[d]:block_starts[d + 1]] is block d
        in_ch = channels
        flops = 0
        for d in range(spec.depth):
            blocks.append(Conv3x3(m * in_ch, m * w, kernel_size=3, padding=1, groups=m))
            flops += 2 * 9 * in_ch * w * h * wd
            if spec.norm == "batch":
                blocks.append(nn.BatchNorm2d(m * w))
            elif spec.norm == "instance":
                blocks.append(nn.GroupNorm(m * w, m * w))
            elif spec.norm == "group":
                blocks.append(nn.GroupNorm(m * GROUPNORM_GROUPS, m * w))
            elif spec.norm == "layer":
                blocks.append(_LayerNorm(m, w, h, wd))
            if spec.pool != "none" and (h < 2 or wd < 2):
                raise NasproxyError(
                    f"{spec.arch_id} pools a {h}x{wd} feature map at depth {d + 1}; use a smaller depth "
                    "or no pooling for these image sizes"
                )
            if spec.pool == "max":
                # every activation here is monotone, so max(act(x)) = act(max(x)) exactly: activating after
                # pooling touches a quarter of the values (a W128 D1 instance-norm training step on random
                # inputs: 65.7 -> 57.5 ms; in the candidate benchmark the gain was within noise)
                blocks += [_MaxPool2x2(), _activation(spec.act)]
            else:
                blocks.append(_activation(spec.act))
                if spec.pool == "avg":
                    blocks.append(_AvgPool2x2())
            if spec.pool != "none":
                h, wd = h // 2, wd // 2
            in_ch = w
            self.block_starts.append(len(blocks))
        self.features = nn.Sequential(*blocks)
        self.feature_dim = w * h * wd
        # multiply-adds x 2 of the convolutions and the classifier, one replica, one image
        self.flops_per_image = flops + 2 * self.feature_dim * num_classes
        # replica r's classifier is rows r*K:(r+1)*K, so every parameter stacks along dim 0
        classifier = [nn.Linear(self.feature_dim, num_classes) for _ in range(m)]
        self.classifier_weight = nn.Parameter(torch.cat([c.weight.detach() for c in classifier]))
        self.classifier_bias = nn.Parameter(torch.cat([c.bias.detach() for c in classifier]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.features[0]
        if self.input_pad:
            x = F.pad(x, (self.input_pad,) * 4)
        spec = self.spec
        fusable = self.replicas == 1 and _first_block.network_input_fusable(x)
        if fusable and _first_block.applies(x, first, spec.pool) and not _hooked(self.features[: self.block_starts[1]]):
            norm = self.features[1] if spec.norm != "none" else None
            x = _first_block.first_block(
                x, first, norm, norm=spec.norm, groups=GROUPNORM_GROUPS, act=spec.act, pool=spec.pool
            )
        else:
            if x.shape[1] == self.channels and self.replicas > 1:
                # shared input: one dense conv with all replicas' filters computes every replica's first layer
                x = F.conv2d(x, first.weight, first.bias, padding=first.padding)
            else:
                x = first(x)
            x = self.features[1 : self.block_starts[1]](x)
        for start, end in zip(self.block_starts[1:-1], self.block_starts[2:]):
            block = self.features[start:end]
            if fusable and spec.norm == "instance" and _first_block.poolable(x, spec.pool) and not _hooked(block[1:]):
                x = _first_block.instance_tail(block[0](x), block[1], act=spec.act, pool=spec.pool)
            else:
                x = block(x)
        if self.replicas == 1:
            return F.linear(x.flatten(1), self.classifier_weight, self.classifier_bias)
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
