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
    x, first = torch.randn(2, 1, 28, 28), net.features[0][0]
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


def test_initialisation_is_the_one_the_committed_results_were_made_with():
    """Seeds reproduce results only while a seed draws the same weights: these are the values the packed
    classifier had when it was built from separate ``nn.Linear`` layers (and the generator ends where it did)."""
    spec = ConvNetSpec(width=8, depth=2, norm="instance", act="relu", pool="avg")
    torch.manual_seed(0)
    net = ConvNet(spec, channels=1, num_classes=10, image_size=(28, 28), replicas=2)
    weight = net.classifier_weight[[0, 10, 19], [0, 5, 391]].tolist()
    assert weight == [-0.011407186277210712, -0.007561444770544767, 0.021936096251010895]
    assert net.classifier_bias[[0, 10, 19]].tolist() == [
        -0.034366391599178314,
        0.027747556567192078,
        0.018672524020075798,
    ]
    assert torch.rand(1).item() == 0.40692663192749023
