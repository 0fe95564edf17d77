"""The CPU backend's pooling against ATen's: same values and gradients (to every order), ties included."""

import copy

import pytest
import torch
import torch.nn.functional as F

from nasproxy.backends import apply_backend
from nasproxy.backends.cpu._pooling import AvgPool2x2, MaxPool2x2
from nasproxy.models import ConvNet, ConvNetSpec
from nasproxy.models._convnet import ACTS


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fast_max_pool_equals_max_pool2d_values_and_gradients_even_with_ties(dtype):
    torch.manual_seed(0)
    # small integers make many windows with tied maxima, where the gradient's position is a convention
    x = torch.randint(-2, 3, (3, 4, 8, 10)).to(dtype).requires_grad_(True)
    grad = torch.randn(3, 4, 4, 5).to(dtype)
    fast, native = MaxPool2x2()(x), F.max_pool2d(x, 2, 2)
    assert torch.equal(fast, native)
    assert torch.equal(torch.autograd.grad(fast, x, grad)[0], torch.autograd.grad(native, x, grad)[0])
    with torch.no_grad():
        assert torch.equal(MaxPool2x2()(x), native)
    # second order (gradient matching differentiates the gradient): same as max_pool2d's double backward
    grad.requires_grad_(True)
    weight = torch.randn_like(x)

    def second_order(pool):
        (first,) = torch.autograd.grad(pool(x), x, grad, create_graph=True)
        return torch.autograd.grad((first * weight).sum(), grad)[0]

    assert torch.equal(second_order(MaxPool2x2()), second_order(lambda t: F.max_pool2d(t, 2, 2)))


def test_fast_max_pool_falls_back_on_odd_sizes():
    x = torch.randn(2, 3, 7, 9, requires_grad=True)
    torch.testing.assert_close(MaxPool2x2()(x), F.max_pool2d(x, 2, 2), rtol=0, atol=0)
    assert MaxPool2x2()(x).shape == (2, 3, 3, 4)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("norm", ["none", "instance", "layer"])
def test_activating_after_max_pooling_computes_what_the_papers_block_order_computes(norm, act):
    torch.manual_seed(0)
    spec = ConvNetSpec(width=8, depth=2, norm=norm, act=act, pool="max")
    papers = ConvNet(spec, channels=1, num_classes=5, image_size=(28, 28))
    ours = apply_backend(copy.deepcopy(papers), "cpu-kernels")
    for block in ours.features:
        assert [type(m).__name__ for m in block][-2:] == ["MaxPool2x2", type(papers.features[0][-2]).__name__]
    # an input that needs a gradient keeps the fused kernels out: only the reordering and the pooling differ
    x = torch.randn(4, 1, 28, 28, requires_grad=True)
    got, want = ours(x), papers(x)
    assert torch.equal(got, want)  # a monotone activation commutes with the maximum exactly
    grads = torch.autograd.grad(got.square().sum(), list(ours.parameters()))
    expected = torch.autograd.grad(want.square().sum(), list(papers.parameters()))
    for a, b in zip(grads, expected):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_avg_pool_equals_avg_pool2d_values_and_gradients(dtype):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 8, 10).to(dtype).requires_grad_(True)
    grad = torch.randn(3, 4, 4, 5).to(dtype)
    fast, native = AvgPool2x2()(x), F.avg_pool2d(x, 2, 2)
    assert type(fast.grad_fn).__name__ == "_AvgPool2x2FunctionBackward"  # not ATen's kernel
    torch.testing.assert_close(fast, native)  # the window's sum is added in another order
    assert torch.equal(torch.autograd.grad(fast, x, grad)[0], torch.autograd.grad(native, x, grad)[0])
    with torch.no_grad():
        torch.testing.assert_close(AvgPool2x2()(x), native)
    channels_last = x.detach().to(memory_format=torch.channels_last)
    torch.testing.assert_close(AvgPool2x2()(channels_last), native.detach())
    # second order, as gradient matching needs it
    grad.requires_grad_(True)
    weight = torch.randn_like(x)

    def second_order(pool):
        (first,) = torch.autograd.grad(pool(x), x, grad, create_graph=True)
        return torch.autograd.grad((first * weight).sum(), grad)[0]

    torch.testing.assert_close(second_order(AvgPool2x2()), second_order(lambda t: F.avg_pool2d(t, 2, 2)))
    for other in (torch.randn(2, 3, 7, 9), torch.randn(2, 3, 8, 8, dtype=torch.bfloat16)):  # ATen's kernel
        assert torch.equal(AvgPool2x2()(other), F.avg_pool2d(other, 2, 2))
