"""A proxy plugin: NASWOT's first score, ``jacob_cov`` (Mellor, Turner, Storkey and Crowley, "Neural
Architecture Search without Training", arXiv:2006.04647 v1, 2020), which nasproxy does not ship.

Use it as any proxy, by file and class:

    nasproxy search --space paper720-w64 --proxy examples/jacob_cov.py:JacobCov --sample 100 --sample-seed 0 \\
        --storage my.journal

The score: for a minibatch of N real images, the Jacobian of the network's summed outputs with respect to each
image (one flattened row per image); the N x N correlation matrix of those rows, its eigenvalues s_i; and
-sum_i [log(s_i + k) + 1 / (s_i + k)] with k = 1e-5. Networks whose Jacobians are less correlated between
images (they tell images apart at initialisation) score higher.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from nasproxy.search import TrainingFree

K = 1e-5  # the paper's stabiliser


def jacob_cov(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.train()
    x = x.clone().requires_grad_(True)
    (jacobian,) = torch.autograd.grad(net(x).sum(), x)
    rows = jacobian.flatten(1).double()
    correlation = torch.corrcoef(rows)
    eigenvalues = torch.linalg.eigvalsh(correlation)
    return float(-(torch.log(eigenvalues + K) + 1.0 / (eigenvalues + K)).sum())


class JacobCov(TrainingFree):
    """What nasproxy needs from a training-free plugin: a name, a version (part of the study's protocol: bump
    it when the score changes), how many real images it looks at, and ``measure(net, x, y)`` -> float, higher
    meaning a better architecture. nasproxy builds the seeded, untrained network and draws the images."""

    name = "jacob-cov"
    version = "1"
    description = "NASWOT v1 Jacobian-covariance score (Mellor et al. 2020), training-free"
    minibatch: ClassVar[int] = 128  # the paper's batch
    measure = staticmethod(jacob_cov)
