"""A fast path refuses whatever the reference path refuses: every backend, given an input the network cannot
take (a wrong channel count, spatial size, rank or dtype), raises as PyTorch's own layers do, before any
arithmetic, instead of returning a number."""

import random

import pytest
import torch

from nasproxy.backends import apply_backend
from nasproxy.backends.cpu._winograd import WinogradConv3x3
from nasproxy.models import build_model
from tests._helpers import needs_compiler

ARCHS = [
    "convnet-w16-d2-instance-relu-avg",  # the fused first block, then the fused instance-norm tail
    "convnet-w32-d3-batch-leakyrelu-max",  # Winograd convolutions past the first block, the fast max pooling
    "convnet-w32-d2-layer-sigmoid-none",
]


def _outcome(net, x):
    try:
        with torch.no_grad():
            return tuple(net(x).shape)
    except Exception as exc:  # noqa: BLE001 - the exception's class is what is compared
        return type(exc)


def _twins(arch: str):
    """The same seeded network on PyTorch's operators and on nasproxy's CPU kernels, in eval mode."""
    torch.manual_seed(0)
    reference = build_model(arch, channels=1, num_classes=10, image_size=(28, 28)).eval()
    fast = apply_backend(build_model(arch, channels=1, num_classes=10, image_size=(28, 28)), "cpu-kernels").eval()
    fast.load_state_dict(reference.state_dict())
    return reference, fast


def _wrong_input(rng: random.Random) -> torch.Tensor:
    """A random input that differs from the networks' [N, 1, 28, 28] fp32 in one respect."""
    n = rng.randint(1, 3)
    kind = rng.choice(["channels", "size", "rank", "dtype"])
    if kind == "channels":
        return torch.randn(n, rng.choice([2, 3, 4, 16]), 28, 28)
    if kind == "size":
        side = rng.choice([4, 12, 20, 32])
        return torch.randn(n, 1, side, rng.choice([side, 28]))
    if kind == "rank":
        return torch.randn(*rng.choice([(1, 28, 28), (n, 1, 28, 28, 1), (28, 28)]))
    return torch.randn(n, 1, 28, 28, dtype=rng.choice([torch.float64, torch.float16]))


@needs_compiler
@pytest.mark.parametrize("arch", ARCHS)
def test_every_backend_refuses_what_aten_refuses(arch):
    reference, fast = _twins(arch)
    rng = random.Random(arch)
    refused = 0
    for _ in range(40):
        x = _wrong_input(rng)
        expected = _outcome(reference, x)
        assert _outcome(fast, x) == expected, (arch, tuple(x.shape), x.dtype)
        refused += isinstance(expected, type)
    assert refused >= 30  # most wrong inputs are refused by the reference (a few sizes are legal for it)
    good = torch.randn(2, 1, 28, 28)
    assert _outcome(fast, good) == _outcome(reference, good) == (2, 10)


@needs_compiler
def test_a_winograd_convolution_refuses_a_wrong_channel_count_as_conv2d_does():
    fast = WinogradConv3x3(16, 16, 3, padding=1)
    plain = torch.nn.Conv2d(16, 16, 3, padding=1)
    x = torch.randn(2, 8, 8, 8)
    with pytest.raises(RuntimeError):
        plain(x)
    with pytest.raises(RuntimeError):
        fast(x)


@pytest.mark.parametrize(
    ("fast", "reference"),
    [
        ("MaxPool2x2", torch.nn.MaxPool2d(2, 2)),
        ("AvgPool2x2", torch.nn.AvgPool2d(2, 2)),
    ],
)
def test_the_pooling_kernels_take_and_refuse_what_aten_does(fast, reference):
    from nasproxy.backends.cpu import _pooling

    kernel = getattr(_pooling, fast)()
    rng = random.Random(fast)
    for _ in range(30):
        rank = rng.choice([2, 3, 4, 5])
        shape = [rng.choice([1, 2, 3, 7, 8]) for _ in range(rank)]
        x = torch.randn(*shape, dtype=rng.choice([torch.float32, torch.float64]))
        assert _outcome(kernel, x) == _outcome(reference, x), (fast, shape, x.dtype)


@needs_compiler
@pytest.mark.parametrize("arch", ARCHS)
def test_every_layout_gives_what_aten_gives(arch):
    reference, fast = _twins(arch)
    x = torch.randn(4, 1, 28, 28)
    for layout in (
        x.contiguous(memory_format=torch.channels_last),
        torch.randn(4, 2, 28, 28)[:, :1],
        x.transpose(2, 3),
    ):
        with torch.no_grad():
            torch.testing.assert_close(fast(layout), reference(layout), rtol=1e-4, atol=1e-4)
