"""3x3 convolutions (stride 1, padding 1) by Winograd's minimal filtering F(4x4, 3x3), on CPUs.

A direct 3x3 convolution spends 9 multiply-adds per output value and input channel; F(4x4, 3x3) computes
each 4x4 output tile from a 6x6 input tile with 36, a quarter (Lavin & Gray, 2016, "Fast Algorithms for
Convolutional Neural Networks"). The work becomes 36 independent matrix products, one per position of
the 6x6 tile, between transformed input tiles ``V = B^T d B`` and transformed filters ``U = G g G^T``; each
product's 4x4 output is ``A^T m A``. The same holds for the backward pass: the input gradient is the
adjoint transforms around the transposed products, the filter gradient a product of ``V`` with the
transformed output gradient. On the 2-core development CPUs the convolutions of the paper's ConvNet
run at oneDNN's direct rate already, so a quarter of the multiplications is the only way left to make
them faster (results/README.md, "Winograd convolutions").

The four tile transforms (input, output, and their adjoints) are small C++ loops, generated from the
transform matrices (``_winograd_source``) and compiled once per machine with ``torch.utils.cpp_extension``
(cached on disk like inductor's kernels); the matrix products are ``torch.bmm``. Each transform is a linear
map whose backward is its adjoint, registered as a ``torch.library`` custom op with that adjoint as its gradient, so the
convolution is differentiable to any order (DC's gradient matching differentiates it twice) and works
under ``torch.compile``.

Float rounding differs from a direct convolution: outputs agree to ~1e-5 relative in fp32 (the
interpolation points 0, +-1, +-2 keep the transforms' coefficients small). It is never used in reduced
precision, where that error would grow beyond noise.
"""

from __future__ import annotations

import torch

from nasproxy.backends.cpu._cpp import CppExtension
from nasproxy.backends.cpu._winograd_source import MIN_CHANNELS, TILE, G, source

_EXTENSION = CppExtension(
    "winograd",
    source,
    ["input_transform", "input_adjoint", "output_transform", "output_adjoint"],
    what="Winograd convolutions",
    fallback="direct convolutions",
)


def extension():
    """The compiled transforms, built on first use; None (after one warning) where building fails."""
    return _EXTENSION.get()


def _spatial_setup(ctx, inputs, output):
    n, _, h, w = inputs[0].shape
    ctx.shape = (n, h, w)


# torch.library.custom_op would wrap each kernel in torch._dynamo.disable, whose first call imports dynamo
# (seconds: results/bench/engine-choices.md) in every process that trains; the plain definitions below do not, as
# torch.library.impl does not by default. Dynamo never traces into these kernels anyway: it runs its compiled
# graphs with tracing disabled.
_LIBRARY = torch.library.Library("nasproxy", "FRAGMENT")


def _define(name: str, schema: str, kernel, fake):
    qualname = f"nasproxy::{name}"
    _LIBRARY.define(name + schema)
    torch.library.impl(qualname, "default", kernel, lib=_LIBRARY)
    torch.library.register_fake(qualname, fake, lib=_LIBRARY)
    return getattr(torch.ops.nasproxy, name).default


def _tile_ops(name: str, to_tiles: str, from_tiles: str):
    """Two custom ops over the extension's kernels ``to_tiles`` (NCHW to ``[36, N*T, C]``) and ``from_tiles``
    (back), which are each other's adjoints. Each is linear, so its gradient is the other applied to the
    incoming gradient: differentiable to any order without saving anything."""

    def to_fake(x):
        n, c, h, w = x.shape
        return x.new_empty(36, n * (h // TILE) * (w // TILE), c)

    def from_fake(tiles, n, h, w):
        return tiles.new_empty(n, tiles.shape[2], h, w)

    to_op = _define(
        f"winograd_{name}_to_tiles",
        "(Tensor x) -> Tensor",
        lambda x: getattr(extension(), to_tiles)(x.contiguous()),
        to_fake,
    )
    from_op = _define(
        f"winograd_{name}_from_tiles",
        "(Tensor tiles, SymInt n, SymInt h, SymInt w) -> Tensor",
        lambda tiles, n, h, w: getattr(extension(), from_tiles)(tiles.contiguous(), n, h, w),
        from_fake,
    )
    torch.library.register_autograd(
        to_op, lambda ctx, grad: from_op(grad, *ctx.shape), setup_context=_spatial_setup, lib=_LIBRARY
    )
    torch.library.register_autograd(from_op, lambda ctx, grad: (to_op(grad), None, None, None), lib=_LIBRARY)
    return to_op, from_op


_input, _input_adjoint = _tile_ops("input", to_tiles="input_transform", from_tiles="input_adjoint")
_output_adjoint, _output = _tile_ops("output", to_tiles="output_adjoint", from_tiles="output_transform")

_filter_matrix = {}


def _filter_transform(device: torch.device) -> torch.Tensor:
    """``G (x) G``, [36, 9]: the 3x3 filter ``g`` (flattened) to ``G g G^T`` (flattened)."""
    if device not in _filter_matrix:
        g = torch.tensor([[float(v) for v in row] for row in G], dtype=torch.float64)
        _filter_matrix[device] = torch.kron(g, g).to(device, torch.float32)
    return _filter_matrix[device]


def winograd_conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=1)`` for a [N, C, H, W] fp32 ``x`` with H and W multiples of 4."""
    n, c, h, w = x.shape
    out_channels = weight.shape[0]
    filters = weight.reshape(out_channels, c, 9).permute(2, 1, 0).reshape(9, c * out_channels)
    transformed_filters = (_filter_transform(weight.device) @ filters).view(36, c, out_channels)
    product = torch.bmm(_input(x), transformed_filters)
    y = _output(product, n, h, w)
    return y if bias is None else y + bias.view(1, -1, 1, 1)


# a constant to torch.compile (read once per trace; cpu.mark_compile_constants): traced, the lock and the
# build would break the graph
def _usable() -> bool:
    return extension() is not None


def shape_fits(conv: torch.nn.Conv2d) -> bool:
    """Whether ``conv`` is a convolution Winograd F(4x4, 3x3) computes: 3x3, stride 1, padding 1, one group,
    and enough input channels to gain from it."""
    return (
        conv.groups == 1
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.in_channels >= MIN_CHANNELS
    )


def applies(x: torch.Tensor, conv: torch.nn.Conv2d) -> bool:
    """Whether ``conv(x)`` runs as :func:`winograd_conv3x3`: for fp32 CPU tensors outside autocast, where
    the extension builds."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and shape_fits(conv)
        and x.dim() == 4
        # a wrong channel count goes to ATen's convolution, which refuses it: a kernel never guesses
        and x.shape[1] == conv.in_channels
        and conv.weight.device == x.device
        and conv.weight.dtype == x.dtype
        and x.shape[-2] % TILE == 0
        and x.shape[-1] % TILE == 0
        and _usable()
    )


class WinogradConv3x3(torch.nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state dict) that runs as Winograd where :func:`applies` says."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if applies(x, self):
            return winograd_conv3x3(x, self.weight, self.bias)
        return super().forward(x)
