"""Forgetting (Toneva et al. 2019): per class, the training images forgotten most often while a ConvNet
trains on the training split, as the DC paper's baseline selects them; images never learned count as
forgotten more than any learned one, and ties are broken by the seed."""

from __future__ import annotations

import torch

from nasproxy.condensers._base import register_condenser
from nasproxy.condensers._selection import Selector


@register_condenser
class Forgetting(Selector):
    """The most forgotten training images of each class (forgetting events while training a ConvNet)."""

    name = "forgetting"

    def select(self, trained, members, dataset, ipc, seed, device) -> torch.Tensor:
        counts = trained.forgetting[members]
        shuffle = torch.randperm(len(members), generator=torch.Generator().manual_seed(seed))
        # a stable sort of a seeded shuffle: equal counts keep the seed's order
        order = torch.sort(counts[shuffle], descending=True, stable=True).indices
        return shuffle[order[:ipc]]
