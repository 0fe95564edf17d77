"""The fused first block against the same block made of ATen's operators: same outputs, same gradients of
every parameter, same batch-norm running statistics, for every norm, activation and pooling of the ConvNet
family; and the rules for when it is used."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasproxy.backends import apply_backend
from nasproxy.backends.cpu import _first_block
from nasproxy.engine import TrainConfig, train_from_scratch
from nasproxy.models import ConvNetSpec, build_model, convnet_builder, stack_convnets
from nasproxy.models._convnet import ACTS, NORMS, POOLS, ConvNet
from tests._helpers import needs_compiler

pytestmark = needs_compiler

COMBINATIONS = list(itertools.product(NORMS, ACTS, POOLS))


def _block(spec: ConvNetSpec, channels: int, seed: int) -> tuple[ConvNet, list[nn.Module]]:
    torch.manual_seed(seed)
    net = ConvNet(spec, channels=channels, num_classes=10, image_size=(32, 32))
    return net, list(net.features[0])


def _randomise(modules: list[nn.Module], seed: int) -> None:
    """Norm weights away from their initial ones and zeros, so that their gradients are tested too."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in modules[1:]:
            for p in m.parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=g))


def _close(got: torch.Tensor, want: torch.Tensor, name: str, scale: torch.Tensor | None = None) -> None:
    """Equal up to float rounding relative to ``scale`` (default: the tensor's own)."""
    scale = want.abs().max().clamp_min(1e-6) if scale is None else scale
    torch.testing.assert_close(got / scale, want / scale, rtol=0, atol=2e-5, msg=name)


@pytest.mark.parametrize(("norm", "act", "pool"), COMBINATIONS)
def test_fused_block_matches_aten(norm, act, pool):
    spec = ConvNetSpec(width=8, depth=1, norm=norm, act=act, pool=pool)
    channels = 3 if norm == "group" else 1  # several input channels for one of each
    net, modules = _block(spec, channels, seed=0)
    _randomise(modules, seed=1)
    reference = _block(spec, channels, seed=0)[1]
    for ref, m in zip(reference, modules):
        ref.load_state_dict(m.state_dict())
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, channels, 32, 32, generator=g)
    assert _first_block.applies(x, modules[0], pool)
    norm_module = modules[1] if norm != "none" else None
    out = _first_block.first_block(x, modules[0], norm_module, norm=norm, groups=4, act=act, pool=pool)
    want = nn.Sequential(*reference)(x)
    _close(out, want, "output")
    upstream = torch.randn(want.shape, generator=g)
    (out * upstream).sum().backward()
    (want * upstream).sum().backward()
    # a conv bias before a norm that subtracts the mean has a zero gradient: only rounding, so the scale is
    # the largest gradient of the block
    scale = max(q.grad.abs().max() for q in nn.Sequential(*reference).parameters())
    for (name, p), q in zip(nn.Sequential(*modules).named_parameters(), nn.Sequential(*reference).parameters()):
        _close(p.grad, q.grad, f"gradient of {name}", scale)
    for (name, b), c in zip(nn.Sequential(*modules).named_buffers(), nn.Sequential(*reference).buffers()):
        torch.testing.assert_close(b, c, rtol=1e-5, atol=1e-6, msg=name)  # batch norm's running statistics


@pytest.mark.parametrize(("act", "pool"), list(itertools.product(ACTS, POOLS)))
def test_fused_instance_norm_after_a_later_convolution_matches_aten(act, pool):
    net, _ = _block(ConvNetSpec(width=8, depth=2, norm="instance", act=act, pool=pool), 1, seed=0)
    tail = net.features[1][1:]  # norm, activation, pooling
    _randomise([None, *tail], seed=1)
    g = torch.Generator().manual_seed(2)
    z = torch.randn(5, 8, 16, 16, generator=g, requires_grad=True)
    out = _first_block.instance_tail(z, tail[0], act=act, pool=pool)
    want = tail(z)
    _close(out, want, "output")
    upstream = torch.randn(want.shape, generator=g)
    got = torch.autograd.grad((out * upstream).sum(), [z, *tail.parameters()])
    expected = torch.autograd.grad((want * upstream).sum(), [z, *tail.parameters()])
    for name, a, b in zip(["z", "gamma", "beta"], got, expected):
        _close(a, b, f"gradient of {name}")


def test_batch_norm_in_eval_mode_uses_running_statistics():
    """As in DC's real-image gradients with batch norm frozen: constant statistics, gradients still flow."""
    spec = ConvNetSpec(width=8, depth=1, norm="batch", pool="max")
    _, modules = _block(spec, 1, seed=0)
    _randomise(modules, seed=1)
    bn = modules[1]
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    for m in modules:
        m.eval()
    x = torch.randn(4, 1, 32, 32)
    out = _first_block.first_block(x, modules[0], bn, norm="batch", groups=4, act="relu", pool="max")
    want = nn.Sequential(*modules)(x)
    _close(out, want, "output")
    params = list(nn.Sequential(*modules).parameters())
    got = torch.autograd.grad(out.square().sum(), params)
    expected = torch.autograd.grad(want.square().sum(), params)
    scale = max(e.abs().max() for e in expected)
    for i, (a, b) in enumerate(zip(got, expected)):
        _close(a, b, f"gradient {i}", scale)
    with torch.inference_mode():
        _close(
            _first_block.first_block(x, modules[0], bn, norm="batch", groups=4, act="relu", pool="max"), want, "scored"
        )


def test_without_conv_bias_or_norm_affine():
    conv = nn.Conv2d(1, 8, 3, padding=1, bias=False)
    norm = nn.GroupNorm(8, 8, affine=False)
    x = torch.randn(3, 1, 16, 16)
    out = _first_block.first_block(x, conv, norm, norm="instance", groups=4, act="relu", pool="avg")
    want = F.avg_pool2d(torch.relu(norm(conv(x))), 2)
    _close(out, want, "output")
    grad = torch.autograd.grad(out.square().sum(), conv.weight)[0]
    _close(grad, torch.autograd.grad(want.square().sum(), conv.weight)[0], "weight gradient")


@pytest.mark.parametrize("arch", ["convnet-w16-d3-instance-relu-avg", "convnet-w16-d2-layer-relu-max"])
def test_whole_network_and_training_match(monkeypatch, arch):
    g = torch.Generator().manual_seed(0)
    images, labels = torch.randn(48, 1, 28, 28, generator=g), torch.arange(48) % 4
    spec = build_model(arch, channels=1, num_classes=4, image_size=(28, 28)).spec
    builder = convnet_builder(spec)

    def train(backend):
        cfg = TrainConfig(epochs=5, batch_size=16, compile=False, backend=backend)
        (net,) = train_from_scratch(
            lambda: builder(channels=1, num_classes=4, image_size=(28, 28)), images, labels, cfg, seeds=[7]
        )
        return net.state_dict()

    fused, aten, again = train("cpu-kernels"), train("aten"), train("cpu-kernels")
    for name in aten:
        torch.testing.assert_close(fused[name], aten[name], rtol=1e-3, atol=1e-4, msg=name)
        assert torch.equal(fused[name], again[name]), f"{name}: same seed, different result"


def _fast(arch: str, channels: int = 1, size: int = 28) -> ConvNet:
    return apply_backend(build_model(arch, channels=channels, num_classes=10, image_size=(size, size)), "cpu-kernels")


def test_where_it_applies(monkeypatch):
    calls, tails = [], []
    real, real_tail = _first_block.first_block, _first_block.instance_tail
    monkeypatch.setattr(_first_block, "first_block", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(_first_block, "instance_tail", lambda *a, **k: tails.append(1) or real_tail(*a, **k))
    net = _fast("convnet-w16-d2-instance-relu-avg")
    x = torch.randn(2, 1, 28, 28)
    net(x)
    assert len(calls) == 1 and len(tails) == 1
    net(x.clone().requires_grad_())  # DC's synthetic images: differentiated twice, so ATen's operators
    with torch.autocast("cpu", dtype=torch.bfloat16):
        net(x)
    apply_backend(stack_convnets([net, net]), "cpu-kernels")(x)  # packed replicas
    _fast("convnet-w16-d2-instance-relu-avg", channels=5)(torch.randn(2, 5, 28, 28))  # too many input channels
    _fast("convnet-w16-d1-instance-relu-max", size=27)(torch.randn(2, 1, 27, 27))  # an odd map to pool
    _fast("convnet-w16-d2-layer-relu-avg")(x)  # tail: instance only
    # the third block's 5x5 map cannot be pooled in pairs: only the second block's tail is fused
    _fast("convnet-w16-d3-instance-relu-max", size=20)(torch.randn(2, 1, 20, 20))
    build_model("convnet-w16-d2-instance-relu-avg", channels=1, num_classes=10, image_size=(28, 28))(x)  # aten
    # first blocks: the plain net, the layer-norm net, the 20x20 net; tails: the plain net, the 5-channel net,
    # the 20x20 net's second block
    assert len(calls) == 3 and len(tails) == 3


def test_the_backend_keeps_parameters_state_dict_keys_and_the_function():
    torch.manual_seed(0)
    plain = build_model("convnet-w16-d2-batch-leakyrelu-max", channels=1, num_classes=10, image_size=(28, 28))
    params = list(plain.parameters())
    keys = list(plain.state_dict())
    x = torch.randn(4, 1, 28, 28)
    want = plain.eval()(x)
    fast = apply_backend(plain, "cpu-kernels")
    assert fast is plain and list(fast.state_dict()) == keys
    assert all(a is b for a, b in zip(fast.parameters(), params))  # an optimizer made before still trains it
    _close(fast(x), want, "output")
    before = repr(fast)
    apply_backend(fast, "cpu-kernels")
    assert repr(fast) == before  # applying twice changes nothing
