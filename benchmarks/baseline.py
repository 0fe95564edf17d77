"""Faithful baselines, structured the way the authors' reference code is: one model at a time, a per-class
loop for gradient matching, eager fp32, a DataLoader over in-memory tensors, a fresh optimizer per phase.

They reuse nasproxy's model definitions and matching distance (so both arms compute the same function) but
none of its engine. Run them in a process where nasproxy's allocator tuning is off (NASPROXY_TUNE_ALLOCATOR=0),
as the authors' code would run.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nasproxy.condensers._matching import gradient_distance
from nasproxy.condensers.dc import paper_loops


def train_epochs(net, images, labels, *, epochs, lr, momentum, weight_decay, batch_size=256, decay_half=True):
    """The authors' evaluation loop: DataLoader batches, SGD, lr x 0.1 at half (new optimizer)."""
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True, num_workers=0)
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
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            correct += (
                (net(images[start : start + batch_size]).argmax(1) == labels[start : start + batch_size]).sum().item()
            )
    return correct / len(images)


def dc_iterations(dataset, build, *, ipc, iterations, seed=0, real_batch=256, on_iteration=None):
    """Algorithm 1 exactly as the reference code structures it; returns the synthetic images."""
    torch.manual_seed(seed)
    k = dataset.num_classes
    c, h, w = dataset.image_shape
    by_class = [dataset.train_images[idx] for idx in dataset.class_indices()]
    outer_loop, inner_loop = paper_loops(ipc)
    syn = torch.randn(k * ipc, c, h, w, requires_grad=True)
    syn_labels = torch.arange(k).repeat_interleave(ipc)
    opt_img = torch.optim.SGD([syn], lr=0.1, momentum=0.5)
    for it in range(iterations):
        start = time.perf_counter()
        net = build()
        net.train()
        params = list(net.parameters())
        opt_net = torch.optim.SGD(net.parameters(), lr=0.01)
        for ol in range(outer_loop):
            loss = torch.tensor(0.0)
            for cls in range(k):
                real = by_class[cls][torch.randperm(len(by_class[cls]))[:real_batch]]
                g_real = torch.autograd.grad(F.cross_entropy(net(real), torch.full((len(real),), cls)), params)
                g_real = [g.detach() for g in g_real]
                img = syn[cls * ipc : (cls + 1) * ipc]
                g_syn = torch.autograd.grad(
                    F.cross_entropy(net(img), torch.full((ipc,), cls)), params, create_graph=True
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
        if on_iteration is not None:
            on_iteration(it, time.perf_counter() - start)
    return syn.detach()
