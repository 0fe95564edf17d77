"""Herding (Welling 2009, as iCaRL selects exemplars): per class, greedily add the image that keeps the
running mean of the chosen images' embeddings closest to the class mean."""

from __future__ import annotations

import torch

from nasproxy.condensers._base import register_condenser
from nasproxy.condensers._selection import Selector, class_embedding


@register_condenser
class Herding(Selector):
    """Herding on the embedding of a ConvNet trained on the training split (L2-normalised, as iCaRL)."""

    name = "herding"

    def select(self, trained, members, dataset, ipc, seed, device) -> torch.Tensor:
        features = torch.nn.functional.normalize(class_embedding(trained, members, dataset, device).double(), dim=1)
        mean = features.mean(0)
        total = torch.zeros_like(mean)
        available = torch.ones(len(features), dtype=torch.bool)
        picked = []
        for k in range(1, ipc + 1):
            # the mean after adding each candidate, against the class mean; chosen images cannot repeat
            distance = ((mean - (total + features) / k) ** 2).sum(1)
            distance[~available] = torch.inf
            best = int(distance.argmin())
            picked.append(best)
            available[best] = False
            total += features[best]
        return torch.tensor(picked)
