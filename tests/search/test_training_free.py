"""The training-free scores against straightforward re-derivations of their reference implementations
(SamsungLabs/zero-cost-nas for grad_norm, snip and synflow; BayesWatch/nas-without-training for NASWOT)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasproxy.models import build_model
from nasproxy.search.proxies._training_free import _grad_norm, _naswot, _snip, _synflow

ARCHS = ["convnet-w8-d2-batch-relu-max", "convnet-w8-d2-instance-sigmoid-avg", "convnet-w8-d1-none-leakyrelu-none"]


def _batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.arange(n) % 10


def _net(arch, seed=0):
    torch.manual_seed(seed)
    return build_model(arch, channels=1, num_classes=10, image_size=(28, 28))


def _layers(net):
    """(name, weight) of the convolutions and the classifier, by name, independently of nasproxy's helper."""
    return [(n, p) for n, p in net.named_parameters() if n.endswith("weight") and p.dim() in (2, 4)]


@pytest.mark.parametrize("arch", ARCHS)
def test_snip_is_the_mask_gradient_of_the_reference(arch):
    # zero-cost-nas computes SNIP as the gradient of the loss with respect to a multiplicative mask of ones
    x, y = _batch()
    net = _net(arch)
    names = [n for n, _ in _layers(net)]
    params = dict(net.named_parameters())
    masks = {n: torch.ones_like(params[n], requires_grad=True) for n in names}
    masked = {**params, **{n: params[n] * masks[n] for n in names}}
    loss = F.cross_entropy(torch.func.functional_call(net.train(), masked, (x,)), y)
    want = sum(g.abs().sum() for g in torch.autograd.grad(loss, [masks[n] for n in names])).item()
    assert _snip(_net(arch), x, y) == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_grad_norm_sums_the_layers_weight_gradient_norms(arch):
    x, y = _batch()
    net = _net(arch).train()
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    want = sum(p.grad.norm() for _, p in _layers(net)).item()
    assert _grad_norm(_net(arch), x, y) == pytest.approx(want, rel=1e-4)
    assert not any("bias" in n for n, _ in _layers(net))


@pytest.mark.parametrize("arch", ARCHS)
def test_synflow_linearises_and_sums_weight_times_gradient(arch):
    x, _ = _batch()
    net = copy.deepcopy(_net(arch)).double().eval()
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.abs())
    net(torch.ones(1, 1, 28, 28, dtype=torch.float64)).sum().backward()
    want = sum((p * p.grad).abs().sum() for _, p in _layers(net)).item()
    assert _synflow(_net(arch), x, None) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("arch", ["convnet-w8-d2-batch-relu-max", "convnet-w8-d3-none-leakyrelu-max"])
def test_naswot_codes_every_unit_at_full_resolution_also_in_max_pool_networks(arch):
    x, y = _batch(32)
    net = _net(arch).train()
    codes = []
    handles = [
        m.register_forward_hook(lambda mod, inp, out: codes.append((inp[0].flatten(1) > 0).double()))
        for m in net.modules()
        if isinstance(m, (nn.ReLU, nn.LeakyReLU))  # BayesWatch: a ReLU unit is on when its input is positive
    ]
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    c = torch.cat(codes, 1)
    assert c.shape[1] == sum(8 * s * s for s in (32, 16, 8)[: int(arch.split("-d")[1][0])])
    want = torch.linalg.slogdet(c @ c.t() + (1 - c) @ (1 - c).t()).logabsdet.item()
    assert _naswot(net, x, y) == pytest.approx(want, rel=1e-9)


def test_naswot_codes_sigmoid_units_by_output_above_one_half():
    x, y = _batch(32)
    net = _net("convnet-w8-d1-none-sigmoid-avg").train()
    codes = []
    sigmoid = net.features[0][1]
    assert isinstance(sigmoid, nn.Sigmoid)
    handle = sigmoid.register_forward_hook(lambda m, i, o: codes.append((o.flatten(1) > 0.5).double()))
    with torch.no_grad():
        net(x)
    handle.remove()
    c = codes[0]
    want = torch.linalg.slogdet(c @ c.t() + (1 - c) @ (1 - c).t()).logabsdet.item()
    assert _naswot(net, x, y) == pytest.approx(want, rel=1e-9)
