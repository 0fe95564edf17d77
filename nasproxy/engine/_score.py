"""Scoring: top-1 accuracy of trained networks, packed where that is faster."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nasproxy.backends import apply_backend, resolve_backend
from nasproxy.engine._accel import (
    COMPILE_MIN_SCORED,
    SCORE_BATCH_CPU,
    SCORE_BATCH_CUDA,
    _groups,
    compiled,
    pack_limit,
    use_compile,
)
from nasproxy.engine._device import autocast
from nasproxy.models import stack_convnets


@torch.inference_mode()
def accuracy(
    modules: Sequence[nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    precision: str = "fp32",
    batch_size: int | None = None,
    pack: int | None = None,
    compile: bool | None = None,
    backend: str = "auto",
) -> list[float]:
    """Top-1 accuracy of each module on ``images`` (eval mode; packed ConvNets share every batch of
    ``batch_size / number packed`` images; compiled when auto says the work pays for it; each module made to
    run on ``backend``, in place)."""
    device = images.device
    backend = resolve_backend(backend, device)
    if batch_size is None:
        batch_size = SCORE_BATCH_CUDA if device.type == "cuda" else SCORE_BATCH_CPU
    result: list[float] = [0.0] * len(modules)
    if not modules:
        return result
    use_compiled = use_compile(compile, len(images) * len(modules), COMPILE_MIN_SCORED, device, precision=precision)
    for group in _groups(modules, pack_limit(pack, device, batch_size, modules[0])):
        members = [modules[i] for i in group]
        packed = apply_backend(stack_convnets(members) if len(members) > 1 else members[0], backend)
        was_training = packed.training
        packed.eval()
        correct = torch.zeros(len(members), device=device)
        step = max(16, batch_size // len(members))  # activations grow with the number of packed networks
        fast = compiled(packed) if use_compiled else packed
        for start in range(0, len(images), step):
            x = images[start : start + step]
            with autocast(precision, device):
                out = fast(x) if len(x) == step else packed(x)
            pred = out.reshape(len(x), len(members), -1).argmax(-1)
            correct += (pred == labels[start : start + step, None]).sum(0)
        packed.train(was_training)
        for i, c in zip(group, correct.tolist()):
            result[i] = c / len(images)
    return result
