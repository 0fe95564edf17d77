"""2x2/stride-2 pooling of even-sized CPU maps as strided tensor operations, faster than ATen's CPU kernels.

Each computes what ``F.max_pool2d`` / ``F.avg_pool2d`` compute (values and gradients, to any order of
differentiation), so the CPU backend swaps them for a network's ``nn.MaxPool2d(2, 2)`` and
``nn.AvgPool2d(2, 2)``; other shapes, devices and dtypes take ATen's kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _even_cpu_map(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dim() == 4 and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0


class _MaxPool2x2Function(torch.autograd.Function):
    """2x2/stride-2 max pooling of an even-sized NCHW map as strided maxima, with max_pool2d's gradient
    (the first maximum of each window in row-major order takes it).

    ATen's CPU ``max_pool2d`` is a branchy scalar loop, several times slower. The first-order backward runs in
    fp32 also for bf16 maps, where ATen's bf16 kernels writing into strided outputs were slower; it only
    copies and zeroes gradient values, so the result is the same in either precision. (Measurements:
    results/bench/engine-choices.md.)
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


class MaxPool2x2(nn.Module):
    """``nn.MaxPool2d(2, 2)``; on CPUs, even-sized maps take :class:`_MaxPool2x2Function`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _even_cpu_map(x):
            return _MaxPool2x2Function.apply(x.contiguous())
        return F.max_pool2d(x, 2, 2)

    def extra_repr(self) -> str:
        return "kernel_size=2, stride=2"


class _AvgPool2x2Function(torch.autograd.Function):
    """2x2/stride-2 average pooling of an even-sized NCHW map as two strided sums.

    About 4x faster than ATen's CPU ``avg_pool2d`` (results/bench/engine-choices.md). The sum adds each
    window's columns first,
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
        # widen, then heighten: two small copies ran faster than one 6-d expand (results/bench/engine-choices.md)
        rows = (grad * 0.25).unsqueeze(-1).expand(n, c, h2, w2, 2).reshape(n, c, h2, 1, 2 * w2)
        return rows.expand(n, c, h2, 2, 2 * w2).reshape(n, c, 2 * h2, 2 * w2)


class AvgPool2x2(nn.Module):
    """``nn.AvgPool2d(2, 2)``; on CPUs, even-sized fp32 maps take :class:`_AvgPool2x2Function`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in bf16 the two-step sum would round twice where ATen accumulates in fp32 and rounds once
        if _even_cpu_map(x) and x.dtype in (torch.float32, torch.float64):
            return _AvgPool2x2Function.apply(x.contiguous())
        return F.avg_pool2d(x, 2, 2)

    def extra_repr(self) -> str:
        return "kernel_size=2, stride=2"
