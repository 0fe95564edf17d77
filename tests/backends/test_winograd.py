"""Winograd F(4x4, 3x3) convolutions against ATen's direct convolution: same values, same gradients of every
order, the same training; and the rules for when a ConvNet uses them."""

import pytest
import torch
import torch.nn.functional as F

from nasproxy import TrainConfig, train_from_scratch
from nasproxy.backends import apply_backend
from nasproxy.backends.cpu import _winograd
from nasproxy.models import ConvNetSpec, build_model, convnet_builder, stack_convnets
from tests._helpers import needs_compiler

pytestmark = needs_compiler

SHAPES = [(3, 16, 8, 8, 12), (2, 32, 24, 4, 4), (4, 128, 128, 16, 16)]  # n, in, out, h, w


def _case(n, cin, cout, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, cin, h, w, generator=g).requires_grad_()
    weight = (torch.randn(cout, cin, 3, 3, generator=g) / (3 * cin**0.5)).requires_grad_()
    bias = torch.randn(cout, generator=g).requires_grad_()
    return x, weight, bias


def _close(a, b, rtol=1e-4):
    """Equal up to float rounding, relative to the tensor's scale (a Winograd sum rounds differently)."""
    torch.testing.assert_close(a, b, rtol=0, atol=rtol * b.abs().max().item())


@pytest.mark.parametrize("shape", SHAPES)
def test_values_and_gradients_match_a_direct_convolution(shape):
    x, weight, bias = _case(*shape)
    direct = F.conv2d(x, weight, bias, padding=1)
    winograd = _winograd.winograd_conv3x3(x, weight, bias)
    _close(winograd, direct)
    grad_out = torch.randn_like(direct)
    for got, want in zip(
        torch.autograd.grad(winograd, (x, weight, bias), grad_out),
        torch.autograd.grad(direct, (x, weight, bias), grad_out),
    ):
        _close(got, want)
    no_bias = _winograd.winograd_conv3x3(x, weight, None)
    _close(no_bias, F.conv2d(x, weight, None, padding=1))


@pytest.mark.parametrize("shape", SHAPES[:2])
def test_second_derivatives_match_as_gradient_matching_needs_them(shape):
    x, weight, bias = _case(*shape)

    def twice(conv):
        y = conv(x, weight, bias)
        (grad_w,) = torch.autograd.grad(y.square().sum(), weight, create_graph=True)
        return torch.autograd.grad(grad_w.square().sum(), (x, weight))

    for got, want in zip(twice(_winograd.winograd_conv3x3), twice(lambda x, w, b: F.conv2d(x, w, b, padding=1))):
        _close(got, want)


@pytest.mark.slow
def test_compiled_convolution_matches_eager():
    x, weight, bias = _case(*SHAPES[0])
    compiled = torch.compile(lambda x, w, b: torch.relu(_winograd.winograd_conv3x3(x, w, b)), dynamic=False)
    y = compiled(x, weight, bias)
    _close(y, torch.relu(F.conv2d(x, weight, bias, padding=1)))
    (grad_x,) = torch.autograd.grad(y.sum(), x)
    (want,) = torch.autograd.grad(torch.relu(F.conv2d(x, weight, bias, padding=1)).sum(), x)
    _close(grad_x, want)


def _calls(monkeypatch) -> list:
    calls = []
    real = _winograd.winograd_conv3x3
    monkeypatch.setattr(_winograd, "winograd_conv3x3", lambda *a: calls.append(1) or real(*a))
    return calls


def _fast(arch: str, size: int = 28):
    net = build_model(arch, channels=1, num_classes=10, image_size=(size, size))
    return apply_backend(net, "cpu-kernels")


def test_the_cpu_backend_uses_it_past_the_first_layer_in_fp32(monkeypatch):
    calls = _calls(monkeypatch)
    arch = "convnet-w16-d3-instance-relu-avg"
    net = _fast(arch)
    x = torch.randn(2, 1, 28, 28)
    net(x)
    assert len(calls) == 2  # the 1-channel first layer stays direct
    with torch.autocast("cpu", dtype=torch.bfloat16):
        net(x)
    assert len(calls) == 2  # reduced precision stays direct
    build_model(arch, channels=1, num_classes=10, image_size=(28, 28))(x)  # the aten backend: never
    assert len(calls) == 2
    net(x.requires_grad_())  # a network input with a gradient (DC's synthetic images): still Winograd
    assert len(calls) == 4


def test_odd_maps_and_packed_networks_stay_direct(monkeypatch):
    calls = _calls(monkeypatch)
    # 30x30 input: 15x15 and 7x7 maps after pooling are no multiple of the 4x4 tile
    _fast("convnet-w16-d2-instance-relu-avg", 26)(torch.randn(2, 1, 26, 26))
    net = build_model("convnet-w16-d2-instance-relu-avg", channels=1, num_classes=10, image_size=(28, 28))
    apply_backend(stack_convnets([net, net]), "cpu-kernels")(torch.randn(2, 1, 28, 28))  # grouped convolutions
    assert calls == []


def test_training_on_the_cpu_backend_matches_training_on_aten():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.randn(48, 1, 28, 28, generator=g), torch.arange(48) % 4
    builder = convnet_builder(ConvNetSpec(width=32, depth=2))

    def train(backend):
        cfg = TrainConfig(epochs=5, batch_size=16, compile=False, backend=backend)
        (net,) = train_from_scratch(
            lambda: builder(channels=1, num_classes=4, image_size=(28, 28)), images, labels, cfg, seeds=[7]
        )
        return net.state_dict()

    winograd, direct = train("cpu-kernels"), train("aten")
    for name in direct:
        torch.testing.assert_close(winograd[name], direct[name], rtol=1e-3, atol=1e-4, msg=name)
