"""Hooks that look at networks part-way through a training run, and what a run reports (``FitStats``). What a
run is, ``TrainConfig``, lives with the other settings in ``nasproxy._configs``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class EpochHook:
    """Look at the networks part-way through training (e.g. score them at half the epochs): after each epoch
    in ``epochs`` (1-based), ``fn(epoch, indices, networks)`` gets the networks of ``fit``'s ``modules`` at
    ``indices`` as trained so far. It must not change them."""

    epochs: frozenset[int]
    fn: Callable[[int, Sequence[int], Sequence[nn.Module]], None]


# (module index in fit's modules, indices of the step's images [b], their logits [b, K])
StepHook = Callable[[int, torch.Tensor, torch.Tensor], None]


@dataclass
class FitStats:
    steps: int = 0
    backend: str = "aten"  # the backend the networks ran on (resolved, see nasproxy.backends)
    resumed: bool = False  # continued from a checkpoint (nasproxy.engine.Checkpoint)


__all__ = ["EpochHook", "FitStats", "StepHook"]
