"""The CPU backend: nasproxy's C++ kernels and faster pooling, swapped into built ConvNets.

:func:`apply` changes a ConvNet's modules in place, keeping every parameter, buffer and state-dict key, so
the network computes the same function (to float rounding) and trains the same way:

- every 2x2 pooling becomes strided tensor operations (``_pooling``), and a max pooling runs before the
  activation, which touches a quarter of the values: a monotone activation commutes with the maximum exactly;
- 3x3 convolutions of at least 16 input channels run as Winograd F(4x4, 3x3) (``_winograd``), a quarter of
  the multiply-adds;
- a single (unpacked) network's first block, and the instance norm, activation and pooling after each later
  convolution, run as fused C++ passes (``_first_block``) on inputs where that is exact and first-order.

Each kernel checks at run time whether it applies (CPU, fp32, outside autocast, shapes) and otherwise runs
the module it replaced. The fused blocks do not call their child modules, so forward hooks on those
children do not fire: hook a network that runs on the ``aten`` backend.
"""

from __future__ import annotations

import torch

from nasproxy.backends.cpu import _first_block, _winograd
from nasproxy.backends.cpu._blocks import apply


def mark_compile_constants() -> None:
    """Tell torch.compile that whether a kernel is usable is constant. Done before a compile rather than at
    import: the marking imports torch._dynamo, which costs a process about as much as importing torch, and a
    CPU run in fp32 never compiles."""
    for usable in (_first_block._usable, _winograd._usable):
        torch.compiler.assume_constant_result(usable)


def build() -> bool:
    """Whether the C++ kernels build (or load from the disk cache) on this machine. Both build at once (each
    is one translation unit: a first build is minutes); a failure warns once per kernel."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        return all(m is not None for m in pool.map(lambda get: get(), (_winograd.extension, _first_block.extension)))


__all__ = ["apply", "build", "mark_compile_constants"]
