import itertools

import pytest
import torch
import torch.nn.functional as F

from nasproxy import NasproxyError
from nasproxy.models import (
    MODELS,
    ConvNet,
    ConvNetSpec,
    build_model,
    parse_convnet_id,
    stack_convnets,
    unstack_convnet,
)
from nasproxy.models._convnet import ACTS, NORMS, POOLS


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_every_registered_model_runs_forward(name, shape):
    model = build_model(name, channels=shape[0], num_classes=10, image_size=shape[1:])
    out = model(torch.randn(4, *shape))
    assert out.shape == (4, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("norm,act,pool", list(itertools.product(NORMS, ACTS, POOLS)))
def test_every_convnet_variant_runs_forward(norm, act, pool):
    spec = ConvNetSpec(width=16, depth=2, norm=norm, act=act, pool=pool)
    net = ConvNet(spec, channels=1, num_classes=10, image_size=(28, 28))
    assert net(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_paper_convnet_matches_the_authors_layout():
    net = build_model("convnet", channels=1, num_classes=10, image_size=(28, 28))
    # conv(1->128)+conv(128->128)x2 + instance-norm affine + linear(128*4*4 -> 10): the authors' count
    assert sum(p.numel() for p in net.parameters()) == 317_706
    # 28x28 is padded to 32x32 at the first conv: the authors' conv with padding 3
    x, first = torch.randn(2, 1, 28, 28), net.features[0]
    seen = {}
    first.register_forward_hook(lambda module, inputs, output: seen.update(out=output))
    net(x)
    torch.testing.assert_close(seen["out"], F.conv2d(x, first.weight, first.bias, padding=3))


@pytest.mark.parametrize("norm", NORMS)
def test_packed_replicas_compute_exactly_what_separate_networks_compute(norm):
    spec = ConvNetSpec(width=8, depth=2, norm=norm, act="leakyrelu", pool="max")
    nets = [ConvNet(spec, channels=1, num_classes=5, image_size=(28, 28)) for _ in range(3)]
    packed = stack_convnets(nets)
    own_inputs = torch.randn(6, 3, 28, 28)
    expected = torch.stack([n(own_inputs[:, i : i + 1]) for i, n in enumerate(nets)], dim=1)
    torch.testing.assert_close(packed(own_inputs), expected)
    shared = torch.randn(6, 1, 28, 28)
    torch.testing.assert_close(packed(shared), torch.stack([n(shared) for n in nets], dim=1))
    for original, restored in zip(nets, unstack_convnet(packed)):
        for a, b in zip(original.state_dict().values(), restored.state_dict().values()):
            torch.testing.assert_close(a, b)  # BatchNorm running stats: equal up to rounding


def test_convnet_ids_round_trip_and_bad_specs_fail_clearly():
    spec = ConvNetSpec(width=64, depth=2, norm="batch", act="sigmoid", pool="max")
    assert parse_convnet_id(spec.arch_id) == spec
    with pytest.raises(NasproxyError, match="norm 'weird' is not one of"):
        ConvNetSpec(norm="weird")
    with pytest.raises(NasproxyError, match="not a ConvNet id"):
        build_model("convnet-w12", channels=1, num_classes=10, image_size=(28, 28))
    with pytest.raises(NasproxyError, match="use a smaller depth"):
        ConvNet(ConvNetSpec(depth=6), channels=1, num_classes=10, image_size=(28, 28))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fast_max_pool_equals_max_pool2d_values_and_gradients_even_with_ties(dtype):
    from nasproxy.models._convnet import _MaxPool2x2

    torch.manual_seed(0)
    # small integers make many windows with tied maxima, where the gradient's position is a convention
    x = torch.randint(-2, 3, (3, 4, 8, 10)).to(dtype).requires_grad_(True)
    grad = torch.randn(3, 4, 4, 5).to(dtype)
    fast, native = _MaxPool2x2()(x), F.max_pool2d(x, 2, 2)
    assert torch.equal(fast, native)
    assert torch.equal(torch.autograd.grad(fast, x, grad)[0], torch.autograd.grad(native, x, grad)[0])
    with torch.no_grad():
        assert torch.equal(_MaxPool2x2()(x), native)
    # second order (gradient matching differentiates the gradient): same as max_pool2d's double backward
    grad.requires_grad_(True)
    weight = torch.randn_like(x)

    def second_order(pool):
        (first,) = torch.autograd.grad(pool(x), x, grad, create_graph=True)
        return torch.autograd.grad((first * weight).sum(), grad)[0]

    assert torch.equal(second_order(_MaxPool2x2()), second_order(lambda t: F.max_pool2d(t, 2, 2)))


def test_fast_max_pool_falls_back_on_odd_sizes():
    from nasproxy.models._convnet import _MaxPool2x2

    x = torch.randn(2, 3, 7, 9, requires_grad=True)
    torch.testing.assert_close(_MaxPool2x2()(x), F.max_pool2d(x, 2, 2), rtol=0, atol=0)
    assert _MaxPool2x2()(x).shape == (2, 3, 3, 4)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("norm", ["none", "instance", "layer"])
def test_activating_after_max_pooling_computes_what_the_papers_block_order_computes(norm, act, monkeypatch):
    from nasproxy.models._convnet import _activation, _MaxPool2x2

    monkeypatch.setenv("NASPROXY_FUSED_BLOCK", "0")  # bit for bit: the fused block rounds differently

    torch.manual_seed(0)
    net = ConvNet(
        ConvNetSpec(width=8, depth=2, norm=norm, act=act, pool="max"), channels=1, num_classes=5, image_size=(28, 28)
    )
    layers = list(net.features)
    pools = [i for i, layer in enumerate(layers) if isinstance(layer, _MaxPool2x2)]
    activation = type(_activation(act))
    assert len(pools) == 2 and all(type(layers[i + 1]) is activation for i in pools)  # pooling, then activating
    for i in pools:  # the paper's order: conv, norm, activation, pooling
        layers[i], layers[i + 1] = layers[i + 1], layers[i]
    x = torch.randn(4, 1, 28, 28)

    def papers_order(images):
        features = torch.nn.Sequential(*layers)(F.pad(images, (2,) * 4))
        return F.linear(features.flatten(1), net.classifier_weight, net.classifier_bias)

    ours = net(x)
    assert torch.equal(ours, papers_order(x))  # a monotone activation commutes with the maximum exactly
    grads = torch.autograd.grad(ours.square().sum(), list(net.parameters()))
    expected = torch.autograd.grad(papers_order(x).square().sum(), list(net.parameters()))
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_avg_pool_equals_avg_pool2d_values_and_gradients(dtype):
    from nasproxy.models._convnet import _AvgPool2x2

    torch.manual_seed(0)
    x = torch.randn(3, 4, 8, 10).to(dtype).requires_grad_(True)
    grad = torch.randn(3, 4, 4, 5).to(dtype)
    fast, native = _AvgPool2x2()(x), F.avg_pool2d(x, 2, 2)
    assert type(fast.grad_fn).__name__ == "_AvgPool2x2FunctionBackward"  # not ATen's kernel
    torch.testing.assert_close(fast, native)  # the window's sum is added in another order
    assert torch.equal(torch.autograd.grad(fast, x, grad)[0], torch.autograd.grad(native, x, grad)[0])
    with torch.no_grad():
        torch.testing.assert_close(_AvgPool2x2()(x), native)
    channels_last = x.detach().to(memory_format=torch.channels_last)
    torch.testing.assert_close(_AvgPool2x2()(channels_last), native.detach())
    # second order, as gradient matching needs it
    grad.requires_grad_(True)
    weight = torch.randn_like(x)

    def second_order(pool):
        (first,) = torch.autograd.grad(pool(x), x, grad, create_graph=True)
        return torch.autograd.grad((first * weight).sum(), grad)[0]

    torch.testing.assert_close(second_order(_AvgPool2x2()), second_order(lambda t: F.avg_pool2d(t, 2, 2)))
    for other in (torch.randn(2, 3, 7, 9), torch.randn(2, 3, 8, 8, dtype=torch.bfloat16)):  # ATen's kernel
        assert torch.equal(_AvgPool2x2()(other), F.avg_pool2d(other, 2, 2))
