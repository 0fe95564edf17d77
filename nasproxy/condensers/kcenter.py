"""K-center (Sener & Savarese 2018, the greedy 2-approximation): per class, start from the image closest to
the class centre in the embedding, then repeatedly add the image farthest from every image chosen so far."""

from __future__ import annotations

import torch

from nasproxy.condensers._base import register_condenser
from nasproxy.condensers._selection import Selector, class_embedding


@register_condenser
class KCenter(Selector):
    """Greedy k-center on the embedding of a ConvNet trained on the training split."""

    name = "k-center"

    def select(self, trained, members, dataset, ipc, seed, device) -> torch.Tensor:
        features = class_embedding(trained, members, dataset, device).double()
        first = int(((features - features.mean(0)) ** 2).sum(1).argmin())
        picked = [first]
        nearest = ((features - features[first]) ** 2).sum(1)  # squared distance to the closest chosen image
        for _ in range(ipc - 1):
            nearest[picked] = -1.0  # chosen images cannot repeat
            far = int(nearest.argmax())
            picked.append(far)
            nearest = torch.minimum(nearest, ((features - features[far]) ** 2).sum(1))
        return torch.tensor(picked)
