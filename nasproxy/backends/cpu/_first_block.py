"""A ConvNet's first block (convolution, normalisation, activation, pooling) fused into a few C++ passes.

The first block is the cheapest in arithmetic and the most expensive in time: with one input channel its
convolution is 9 multiply-adds per value, but every layer after it (norm, activation, pool, and each of
their backward passes) reads and writes the full-resolution W x 32 x 32 map of every image, which for 100
images is 52 MB per pass: about half of a training step of the paper's ConvNet on a 2-core CPU. Here
nothing of it is stored: each pass recomputes a plane's convolution in cache from the input, which is
cheaper than reading it back (``_first_block.cpp``; the measurements: results/bench/engine-choices.md).

Instance norm (the paper's) takes one pass each way: its statistics are the plane's own. Other norms take
two: per-plane moments from C++, combined in PyTorch over what the norm averages (planes of a group, of an
image for layer norm, of a channel across images for batch norm; Chan et al.'s pairwise update), then the
output; backward, per-plane sums, then the filter gradient with the norm's gradient folded into three
numbers per plane. Batch norm's running statistics are updated as ``nn.BatchNorm2d`` does.

The later blocks' convolutions are too costly to recompute, but after one an instance norm, activation and
pooling also run as one C++ pass each way over the stored convolution output (:func:`instance_tail`), in place
of ATen's three passes and their backward passes.

Used only where it is exact to float rounding and first-order: CPU fp32 tensors outside autocast, one
network (not packed replicas), a first convolution of at most four input channels, maps that pool in pairs,
and network inputs that do not need a gradient (DC's synthetic images do, and their gradient matching
differentiates twice: those run ATen's operators). The CPU backend (``backends.cpu``) puts these blocks into
a network; a network built without it never runs them.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from nasproxy.backends.cpu._cpp import CppExtension

MAX_IN_CHANNELS = 4  # wider inputs make recomputing the convolution cost more than storing it
_ACTS = {"sigmoid": 0, "relu": 1, "leakyrelu": 2}
_POOLS = {"none": 0, "max": 1, "avg": 2}
_LEAKY_SLOPE = 0.01
_EMPTY = torch.empty(0)

_EXTENSION = CppExtension(
    "first_block",
    lambda: Path(__file__).with_name("_first_block.cpp").read_text(),
    [
        "plane_moments",
        "block_forward",
        "block_backward_sums",
        "block_backward_conv",
        "instance_forward",
        "instance_backward",
        "instance_tail_forward",
        "instance_tail_backward",
    ],
    what="fused first blocks",
    fallback="ATen's operators",
)


def extension():
    return _EXTENSION.get()


# a constant to torch.compile (read once per trace; cpu.mark_compile_constants): traced, the lock and the
# build would break the graph
def _usable() -> bool:
    return extension() is not None


def network_input_fusable(x: torch.Tensor) -> bool:
    """Whether a network's blocks may run fused on input ``x``: CPU fp32 outside autocast, and an input that
    needs no gradient (where it does, as DC's synthetic images, a second derivative may follow)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and not torch.is_autocast_enabled("cpu")
        and not (x.requires_grad and torch.is_grad_enabled())
        and _usable()
    )


def poolable(x: torch.Tensor, pool: str) -> bool:
    return pool == "none" or (x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0)


def applies(x: torch.Tensor, conv: torch.nn.Conv2d, pool: str) -> bool:
    """Whether the block whose convolution is ``conv`` runs fused on the network input ``x``."""
    return (
        network_input_fusable(x)
        # a wrong channel count goes to ATen's convolution, which refuses it: a kernel never guesses
        and x.shape[1] == conv.in_channels
        and conv.weight.device == x.device
        and conv.weight.dtype == x.dtype
        and conv.groups == 1
        and conv.in_channels <= MAX_IN_CHANNELS
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and poolable(x, pool)
    )


def _group_size(norm: str, planes: tuple[int, int], groups: int) -> int:
    """How many planes share one set of statistics."""
    n, c = planes
    return {"batch": n, "layer": c, "group": c // groups}[norm]


def _group_total(t: torch.Tensor, norm: str, groups: int) -> torch.Tensor:
    """``t`` [N, C] summed over each group of planes that share statistics, broadcast back to [N, C]."""
    n, c = t.shape
    if norm == "batch":
        return t.sum(0, keepdim=True).expand(n, c)
    q = _group_size(norm, (n, c), groups)
    return t.view(n, c // q, q).sum(-1, keepdim=True).expand(n, c // q, q).reshape(n, c)


def _or_empty(t: torch.Tensor | None) -> torch.Tensor:
    return _EMPTY if t is None else t


class _FusedBlock(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, weight, bias, gamma, beta, layer_weight, layer_bias, mean, rstd, layout):
        """``mean`` and ``rstd`` [N, C] are each plane's statistics (None without a norm); ``layout`` is
        (norm, groups, act, pool, batch statistics or running ones)."""
        norm, _, act, pool, _ = layout
        if norm == "none":
            scale = shift = _EMPTY
        elif gamma is not None:
            scale = gamma * rstd
            shift = beta - scale * mean
        else:
            scale, shift = rstd, -mean * rstd
        args = (
            xp,
            weight,
            _or_empty(bias),
            scale.contiguous(),
            shift.contiguous(),
            _or_empty(layer_weight),
            _or_empty(layer_bias),
        )
        ctx.layout = layout
        ctx.has = (bias is not None, gamma is not None, beta is not None, layer_weight is not None)
        ctx.save_for_backward(*args, *(_or_empty(t) for t in (gamma, mean, rstd)))
        return extension().block_forward(*args, _ACTS[act], _LEAKY_SLOPE, _POOLS[pool])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        norm, groups, act, pool, batch_statistics = ctx.layout
        has_bias, has_gamma, has_beta, has_layer = ctx.has
        *args, gamma, mean, rstd = ctx.saved_tensors
        xp = args[0]
        grad = grad.contiguous()
        modes = (_ACTS[act], _LEAKY_SLOPE, _POOLS[pool])
        ext = extension()
        dgamma = dbeta = dlayer_weight = dlayer_bias = None
        if norm == "none":
            dz_coefficients = (_EMPTY, _EMPTY, _EMPTY)
        else:
            xa, xb = rstd.contiguous(), (-mean * rstd).contiguous()
            sums, dlayer_weight, dlayer_bias = ext.block_backward_sums(grad, *args, xa, xb, *modes)
            dy_sum, dy_xhat = sums.unbind(-1)
            gain = rstd if has_layer else (gamma * rstd if has_gamma else rstd)
            if has_gamma:
                dgamma, dbeta = dy_xhat.sum(0, keepdim=True), dy_sum.sum(0, keepdim=True)
                dy_sum, dy_xhat = gamma * dy_sum, gamma * dy_xhat
            if batch_statistics:
                count = _group_size(norm, tuple(mean.shape), groups) * (xp.shape[2] - 2) * (xp.shape[3] - 2)
                mean_dy = _group_total(dy_sum, norm, groups) / count
                mean_dy_xhat = _group_total(dy_xhat, norm, groups) / count
                dz_coefficients = (gain, -rstd * mean_dy_xhat * xa, -rstd * (mean_dy + mean_dy_xhat * xb))
            else:  # running statistics are constants
                dz_coefficients = (gain, torch.zeros_like(rstd), torch.zeros_like(rstd))
            dz_coefficients = tuple(t.contiguous() for t in dz_coefficients)
        dweight, dbias = ext.block_backward_conv(grad, *args, *dz_coefficients, *modes)
        return (
            None,
            dweight,
            dbias if has_bias else None,
            dgamma,
            dbeta if has_beta else None,
            dlayer_weight if has_layer else None,
            dlayer_bias if has_layer else None,
            None,
            None,
            None,
        )


class _FusedInstanceNorm(torch.autograd.Function):
    """Instance norm (statistics per plane), activation and pooling in one C++ pass each way: after the first
    block's recomputed convolution (kernels ``instance_*``; tensors xp, weight, bias, gamma, beta; no gradient
    for the images xp) or after a stored convolution output (``instance_tail_*``; tensors z, gamma, beta)."""

    @staticmethod
    def forward(ctx, kernels, layout, *tensors):
        eps, act, pool = layout
        args = tuple(_or_empty(t).contiguous() for t in tensors)
        out, stats = getattr(extension(), f"{kernels}_forward")(*args, eps, _ACTS[act], _LEAKY_SLOPE, _POOLS[pool])
        ctx.kernels, ctx.layout = kernels, layout
        ctx.has = [t is not None for t in tensors]
        ctx.save_for_backward(*args, stats)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        _, act, pool = ctx.layout
        *args, stats = ctx.saved_tensors
        modes = (_ACTS[act], _LEAKY_SLOPE, _POOLS[pool])
        grads = getattr(extension(), f"{ctx.kernels}_backward")(grad.contiguous(), *args, stats, *modes)
        grads = [None] * (len(args) - len(grads)) + list(grads)  # the first block's images get none
        return (None, None, *(g if has else None for g, has in zip(grads, ctx.has)))


def instance_tail(z: torch.Tensor, norm_module, *, act: str, pool: str) -> torch.Tensor:
    """``pool(act(instance_norm(z)))`` in one C++ pass each way, for a network input where
    :func:`network_input_fusable` holds and a ``z`` that :func:`poolable` accepts."""
    layout = (norm_module.eps, act, pool)
    return _FusedInstanceNorm.apply("instance_tail", layout, z, norm_module.weight, norm_module.bias)


def _statistics(xp, conv, norm_module, norm: str, groups: int):
    """Each plane's mean and 1/std under the norm, updating a batch norm's running statistics in training."""
    eps = norm_module.eps
    n, c = xp.shape[0], conv.out_channels
    running = norm == "batch" and not norm_module.training and norm_module.running_mean is not None
    if running:
        mean = norm_module.running_mean.view(1, c).expand(n, c)
        var = norm_module.running_var.view(1, c).expand(n, c)
        return mean, (var + eps).rsqrt(), False
    with torch.no_grad():
        bias = _or_empty(conv.bias).detach()
        plane_mean, plane_m2 = extension().plane_moments(xp, conv.weight.detach(), bias).unbind(-1)
        hw = (xp.shape[2] - 2) * (xp.shape[3] - 2)
        q = _group_size(norm, (n, c), groups)
        mean = _group_total(plane_mean, norm, groups) / q
        m2 = _group_total(plane_m2 + hw * (plane_mean - mean) ** 2, norm, groups)
        var = m2 / (q * hw)
        if norm == "batch" and norm_module.training and norm_module.track_running_stats:
            norm_module.num_batches_tracked.add_(1)
            momentum = norm_module.momentum
            factor = 1.0 / float(norm_module.num_batches_tracked) if momentum is None else momentum
            unbiased = var[0] * (q * hw / max(q * hw - 1, 1))
            norm_module.running_mean.mul_(1 - factor).add_(mean[0], alpha=factor)
            norm_module.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        return mean, (var + eps).rsqrt(), True


def first_block(x, conv, norm_module, *, norm: str, groups: int, act: str, pool: str) -> torch.Tensor:
    """``pool(act(norm(conv(x))))`` of a ConvNet block (the ConvNet's order of pooling and activation), for
    an ``x`` where :func:`applies` holds. ``norm`` is the spec's name (``groups``: a group norm's groups)."""
    xp = F.pad(x, (1, 1, 1, 1)).contiguous()
    if norm == "instance":
        layout = (norm_module.eps, act, pool)
        return _FusedInstanceNorm.apply(
            "instance", layout, xp, conv.weight, conv.bias, norm_module.weight, norm_module.bias
        )
    c = conv.out_channels
    layout = (norm, groups, act, pool, True)
    mean = rstd = gamma = beta = layer_weight = layer_bias = None
    if norm != "none":
        mean, rstd, batch_statistics = _statistics(xp, conv, norm_module, norm, groups)
        layout = (norm, groups, act, pool, batch_statistics)
        if norm == "layer":
            layer_weight, layer_bias = norm_module.weight, norm_module.bias
        elif norm_module.weight is not None:
            gamma, beta = norm_module.weight.view(1, c), norm_module.bias.view(1, c)
    return _FusedBlock.apply(xp, conv.weight, conv.bias, gamma, beta, layer_weight, layer_bias, mean, rstd, layout)
