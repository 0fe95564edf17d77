"""Class-balanced random real images: the reference point every condenser is measured against."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nasproxy.condensers._base import Condenser, CondenseResult, RunContext, real_images_per_class, register_condenser
from nasproxy.data import Dataset


@register_condenser
class RandomCoreset(Condenser):
    """Class-balanced random real training images (the paper's random baseline)."""

    name = "random"

    @dataclass(frozen=True)
    class Config:
        pass

    def condense(self, dataset: Dataset, *, ipc: int, seed: int, context: RunContext) -> CondenseResult:
        images, labels = real_images_per_class(dataset, ipc, torch.Generator().manual_seed(seed))
        return CondenseResult(images=images, labels=labels)
