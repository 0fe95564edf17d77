"""Faithful baselines, structured the way the authors' reference code is: one model at a time, a per-class
loop for gradient matching, eager fp32, a DataLoader over in-memory tensors, a fresh optimizer per phase.

The networks are built the way the reference code builds them (:func:`authors_convnet`: one
``nn.Sequential`` per network, the 28x28-to-32x32 padding inside the first conv, ``nn.LayerNorm`` and
``nn.GroupNorm`` modules), so they compute the same function as nasproxy's ConvNet with none of its speed-ups;
the matching distance is nasproxy's. Run them in a process where nasproxy's allocator tuning is off
(NASPROXY_TUNE_ALLOCATOR=0), as the authors' code would run.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from benchmarks._common import REAL_BATCH
from nasproxy.condensers._matching import gradient_distance
from nasproxy.condensers.dc import paper_loops
from nasproxy.models import ConvNetSpec, model_builder


def _authors_norm(norm: str, c: int, h: int, w: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(c)
    if norm == "layer":
        return nn.LayerNorm([c, h, w])
    return nn.GroupNorm(c if norm == "instance" else 4, c)


class AuthorsConvNet(nn.Module):
    """A ConvNet laid out as in the reference implementation: conv (padding 3 on 28x28 one-channel input,
    giving 32x32), norm, activation, 2x2 pooling, repeated; then one linear layer."""

    def __init__(self, spec: ConvNetSpec, *, channels: int, num_classes: int, image_size) -> None:
        super().__init__()
        c, h, w = channels, *image_size
        if h == 28:
            h, w = 32, 32
        layers: list[nn.Module] = []
        for d in range(spec.depth):
            layers.append(nn.Conv2d(c, spec.width, 3, padding=3 if channels == 1 and d == 0 else 1))
            c = spec.width
            if spec.norm != "none":
                layers.append(_authors_norm(spec.norm, c, h, w))
            layers.append(
                {"relu": nn.ReLU(inplace=True), "leakyrelu": nn.LeakyReLU(0.01), "sigmoid": nn.Sigmoid()}[spec.act]
            )
            if spec.pool != "none":
                layers.append(nn.MaxPool2d(2, 2) if spec.pool == "max" else nn.AvgPool2d(2, 2))
                h, w = h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c * h * w, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def authors_convnet(name: str, *, channels: int, num_classes: int, image_size) -> AuthorsConvNet:
    return AuthorsConvNet(model_builder(name).spec, channels=channels, num_classes=num_classes, image_size=image_size)


def train_epochs(net, images, labels, *, epochs, lr, momentum, weight_decay, batch_size=256, decay_half=True):
    """The authors' evaluation loop: the training set moved to the network's device once, DataLoader batches,
    SGD, lr x 0.1 at half (new optimizer)."""
    device = next(net.parameters()).device
    loader = DataLoader(
        TensorDataset(images.to(device), labels.to(device)), batch_size=batch_size, shuffle=True, num_workers=0
    )
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    net.train()
    for ep in range(epochs):
        if decay_half and ep == epochs // 2 and ep > 0:
            lr *= 0.1
            opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        for x, y in loader:
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def test_accuracy(net, images, labels, batch_size=256):
    """The authors' test loop: batches of 256 moved to the network's device one at a time."""
    device = next(net.parameters()).device
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x, y = images[start : start + batch_size].to(device), labels[start : start + batch_size].to(device)
            correct += (net(x).argmax(1) == y).sum().item()
    return correct / len(images)


def dc_iterations(
    dataset,
    build,
    *,
    ipc,
    iterations,
    seed=0,
    real_batch=REAL_BATCH,
    on_iteration=None,
    seconds_budget=None,
    device=torch.device("cpu"),
):
    """Algorithm 1 exactly as the reference code structures it (the whole training set on the device, as
    theirs); returns the synthetic images. With ``seconds_budget``, stops before an iteration that would end
    after the budget (at the last one's pace)."""
    torch.manual_seed(seed)
    k = dataset.num_classes
    c, h, w = dataset.image_shape
    by_class = [dataset.train_images[idx].to(device) for idx in dataset.class_indices()]
    outer_loop, inner_loop = paper_loops(ipc)
    syn = torch.randn(k * ipc, c, h, w, device=device, requires_grad=True)
    syn_labels = torch.arange(k, device=device).repeat_interleave(ipc)
    opt_img = torch.optim.SGD([syn], lr=0.1, momentum=0.5)
    began, last = time.perf_counter(), 0.0
    for it in range(iterations):
        start = time.perf_counter()
        if seconds_budget is not None and start - began + last > seconds_budget:
            break
        net = build().to(device)
        net.train()
        params = list(net.parameters())
        opt_net = torch.optim.SGD(net.parameters(), lr=0.01)
        for ol in range(outer_loop):
            loss = torch.tensor(0.0, device=device)
            for cls in range(k):
                real = by_class[cls][torch.randperm(len(by_class[cls]))[:real_batch]]
                g_real = torch.autograd.grad(
                    F.cross_entropy(net(real), torch.full((len(real),), cls, device=device)), params
                )
                g_real = [g.detach() for g in g_real]
                img = syn[cls * ipc : (cls + 1) * ipc]
                g_syn = torch.autograd.grad(
                    F.cross_entropy(net(img), torch.full((ipc,), cls, device=device)), params, create_graph=True
                )
                loss = loss + gradient_distance([g[None] for g in g_real], [g[None] for g in g_syn])
            opt_img.zero_grad()
            loss.backward()
            opt_img.step()
            if ol == outer_loop - 1:
                break
            loader = DataLoader(TensorDataset(syn.detach().clone(), syn_labels), batch_size=256, shuffle=True)
            for _ in range(inner_loop):
                for x, y in loader:
                    l_net = F.cross_entropy(net(x), y)
                    opt_net.zero_grad()
                    l_net.backward()
                    opt_net.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the iteration's kernels are done, not merely queued
        last = time.perf_counter() - start
        if on_iteration is not None:
            on_iteration(it, last)
    return syn.detach()
