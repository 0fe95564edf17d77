"""Dataset Condensation with Differentiable Siamese Augmentation (Zhao & Bilen, ICML 2021): gradient
matching where each matching step augments a class's real and synthetic images with the same randomly drawn
operation (``nasproxy.augment``). Networks trained on a DSA condensed set train with the same augmentation, as its
authors evaluate it: the condensed set records the strategy, and ``evaluate`` and ``search`` use it."""

from __future__ import annotations

from dataclasses import dataclass

from nasproxy.condensers._base import register_condenser
from nasproxy.condensers.dc import DatasetCondensation


@register_condenser
class DifferentiableSiameseAugmentation(DatasetCondensation):
    """Gradient matching with Differentiable Siamese Augmentation (DSA's strategy; no flips for digits)."""

    name = "dsa"

    @dataclass(frozen=True)
    class Config(DatasetCondensation.Config):
        augment: str | None = "auto"
