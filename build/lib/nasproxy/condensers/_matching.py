"""Per-class network gradients and the distances between them (Zhao et al. 2021, eq. 10 and Table T11).

Gradients come as one tensor per parameter, shaped ``[K, *parameter_shape]`` (K classes), so every
distance is computed for all classes at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from nasproxy._errors import NasproxyError
from nasproxy.engine import autocast, compiled
from nasproxy.models import ConvNet, per_replica

METRICS = ("layerwise", "mse", "cos")
_EPS = 1e-6  # the authors' guard against zero norms


def gradient_distance(real: list[torch.Tensor], syn: list[torch.Tensor], metric: str = "layerwise") -> torch.Tensor:
    """Summed over classes. ``layerwise``: per layer, sum over output nodes of 1 - cosine (biases and
    normalisation parameters excluded, as in the paper); ``mse``: squared distance of all gradients;
    ``cos``: 1 - cosine of all gradients flattened into one vector per class."""
    if metric == "layerwise":
        total = real[0].new_zeros(())
        for gr, gs in zip(real, syn):
            if gr.dim() <= 2:  # [K, n]: a bias or a normalisation parameter
                continue
            gr = gr.flatten(2) if gr.dim() > 3 else gr  # [K, out, everything else]
            gs = gs.flatten(2) if gs.dim() > 3 else gs
            cos = (gr * gs).sum(-1) / (gr.norm(dim=-1) * gs.norm(dim=-1) + _EPS)
            total = total + (1 - cos).sum()
        return total
    flat_r = torch.cat([g.flatten(1) for g in real], dim=1)
    flat_s = torch.cat([g.flatten(1) for g in syn], dim=1)
    if metric == "mse":
        return ((flat_s - flat_r) ** 2).sum()
    if metric == "cos":
        cos = (flat_r * flat_s).sum(-1) / (flat_r.norm(dim=-1) * flat_s.norm(dim=-1) + _EPS)
        return (1 - cos).sum()
    raise NasproxyError(f"unknown matching metric {metric!r}; choose one of {', '.join(METRICS)}")


class ClassGradients:
    """Gradients of each class's mean cross-entropy w.r.t. a network's parameters, for all classes.

    For a ConvNet (``packed=True``) the network is replicated once per class into one packed module and
    class k's images go to replica k, so one forward/backward yields every class gradient; otherwise the
    classes are looped over. Both give the same numbers (tests check this).
    """

    def __init__(
        self, num_classes: int, *, packed: bool = True, precision: str = "fp32", compile: bool = False
    ) -> None:
        self.num_classes = num_classes
        self.packed = packed
        self.precision = precision
        self.compile = compile  # first-order passes only: compiled graphs have no double backward
        self._templates: dict = {}  # (spec, shape, device) -> a replicated ConvNet used only as a function

    def __call__(
        self, net: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, create_graph: bool
    ) -> list[torch.Tensor]:
        """``images`` [K, n, C, H, W], ``labels`` [K, n] -> one ``[K, *shape]`` tensor per parameter."""
        if self.packed and isinstance(net, ConvNet) and net.replicas == 1:
            return self._packed(net, images, labels, create_graph)
        params = list(net.parameters())
        forward = compiled(net) if self.compile and not create_graph else net
        per_class = []
        for c in range(labels.shape[0]):
            with autocast(self.precision, images.device):
                out = forward(images[c])
            loss = F.cross_entropy(out.float(), labels[c])
            per_class.append(torch.autograd.grad(loss, params, create_graph=create_graph))
        return [torch.stack(gs) for gs in zip(*per_class)]

    def _packed(self, net: ConvNet, images, labels, create_graph: bool) -> list[torch.Tensor]:
        k, n = labels.shape
        key = (net.spec, net.channels, net.num_classes, net.image_size, images.device)
        if key not in self._templates:
            self._templates[key] = ConvNet(
                net.spec, channels=net.channels, num_classes=net.num_classes, image_size=net.image_size, replicas=k
            ).to(images.device)
        template = self._templates[key]
        for mine, theirs in zip(template.modules(), net.modules()):
            mine.training = theirs.training  # e.g. BatchNorm frozen in eval mode by the caller
        params = {
            name: p.detach().repeat(k, *([1] * (p.dim() - 1))).requires_grad_(True)
            for name, p in net.named_parameters()
        }
        buffers = {name: b if b.dim() == 0 else b.repeat(k, *([1] * (b.dim() - 1))) for name, b in net.named_buffers()}
        x = images.transpose(0, 1).flatten(1, 2)  # [n, K*C, H, W]: class k -> replica k
        with autocast(self.precision, images.device):
            out = functional_call(template, {**params, **buffers}, (x,))
        loss = F.cross_entropy(out.float().flatten(0, 1), labels.t().reshape(-1), reduction="sum") / n
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
        return [per_replica(g, k) for g in grads]
