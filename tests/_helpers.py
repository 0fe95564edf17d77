"""Data that several test modules build the same way."""

import torch


def separable(n: int, classes: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 28x28 images whose ``classes`` classes a small ConvNet learns in a few steps (class c is
    brighter in row block c)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    images = torch.randn(n, 1, 28, 28, generator=g) * 0.3
    for c in range(classes):
        images[labels == c, :, 4 * c : 4 * c + 4, :] += 2.0
    return images, labels
