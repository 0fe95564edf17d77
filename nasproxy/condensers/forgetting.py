"""Forgetting (Toneva et al. 2019): per class, the training images forgotten most often while a ConvNet
trains on the training split, as the DC paper's baseline selects them; ties are broken by the seed.

Images the network never classified correctly have no forgetting event to count. By default they rank
after every learned image (``never_learned="last"``): that reproduces the DC paper's Fashion-MNIST baseline
(39.0 and 50.3 % at 1 and 10 images per class against its 42.0 and 53.9). Toneva et al. rank them as
forgotten more than any learned image (``"first"``); on Fashion-MNIST those images are mostly ambiguous or
mislabelled, every class has at least 10 of them, and a condensed set of them reaches 24.4 and 21.4 %
(results/fashion-mnist/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nasproxy._errors import NasproxyError
from nasproxy.condensers._base import register_condenser
from nasproxy.condensers._selection import SelectionConfig, Selector


@register_condenser
class Forgetting(Selector):
    """The most forgotten training images of each class (forgetting events while training a ConvNet)."""

    name = "forgetting"

    @dataclass(frozen=True)
    class Config(SelectionConfig):
        never_learned: str = "last"  # last (reproduces the DC paper) | first (Toneva et al.)

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.never_learned not in ("first", "last"):
                raise NasproxyError(f"never_learned must be first or last, got {self.never_learned!r}")

    def select(self, trained, members, dataset, ipc, seed, device) -> torch.Tensor:
        counts = trained.forgetting[members]
        if self.config.never_learned == "last":
            counts = torch.where(trained.learned[members], counts, torch.full_like(counts, -1))
        shuffle = torch.randperm(len(members), generator=torch.Generator().manual_seed(seed))
        # a stable sort of a seeded shuffle: equal counts keep the seed's order
        order = torch.sort(counts[shuffle], descending=True, stable=True).indices
        return shuffle[order[:ipc]]
