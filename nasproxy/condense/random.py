"""Class-balanced random real images: the reference point every condenser is measured against."""

from __future__ import annotations

from dataclasses import dataclass

from nasproxy.condense._base import CondenseResult, Condenser, RunContext, real_images_per_class, register_condenser
from nasproxy.data import Dataset

import torch


@register_condenser
class RandomCoreset(Condenser):
    name = "random"

    @dataclass(frozen=True)
    class Config:
        pass

    def condense(self, dataset: Dataset, *, ipc: int, seed: int, context: RunContext) -> CondenseResult:
        images, labels = real_images_per_class(dataset, ipc, torch.Generator().manual_seed(seed))
        return CondenseResult(images=images, labels=labels)
