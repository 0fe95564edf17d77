import pytest
import torch

from nasproxy.condensers import ClassGradients, gradient_distance
from nasproxy.models import build_model


def _grads(k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(k, 8, 4, 3, 3, generator=g), torch.randn(k, 8, generator=g), torch.randn(k, 5, 32, generator=g)]


@pytest.mark.parametrize("metric", ["layerwise", "mse", "cos"])
def test_distance_is_zero_for_identical_gradients(metric):
    g = _grads()
    assert gradient_distance(g, [t.clone() for t in g], metric).item() == pytest.approx(0.0, abs=1e-4)


def test_layerwise_distance_is_invariant_to_positive_per_node_scaling():
    real, syn = _grads(seed=0), _grads(seed=1)
    scaled = [syn[0] * torch.rand(3, 8, 1, 1, 1).add(0.1) * 10, syn[1], syn[2] * torch.rand(3, 5, 1).add(0.1)]
    torch.testing.assert_close(gradient_distance(real, syn), gradient_distance(real, scaled))


def test_layerwise_distance_ignores_biases_and_counts_one_minus_cosine_per_output_node():
    real, syn = _grads(seed=0), _grads(seed=1)
    changed_bias = [syn[0], syn[1] * -5, syn[2]]
    assert gradient_distance(real, syn).item() == pytest.approx(gradient_distance(real, changed_bias).item())
    opposite = [-t for t in real]
    # every output node fully opposed: 1 - (-1) = 2 per node; 3 classes x (8 + 5) nodes
    assert gradient_distance(real, opposite).item() == pytest.approx(2 * 3 * (8 + 5), rel=1e-4)


def test_mse_and_cos_see_every_parameter():
    real, syn = _grads(seed=0), _grads(seed=1)
    changed_bias = [syn[0], syn[1] * -5, syn[2]]
    for metric in ("mse", "cos"):
        assert gradient_distance(real, syn, metric) != gradient_distance(real, changed_bias, metric)


@pytest.mark.parametrize("model", ["convnet-w8-d2-instance-relu-avg", "convnet-w8-d2-layer-sigmoid-max"])
def test_packed_class_gradients_equal_the_class_loop(model):
    net = build_model(model, channels=1, num_classes=3, image_size=(28, 28))
    images = torch.randn(3, 5, 1, 28, 28, requires_grad=True)
    labels = torch.arange(3)[:, None].expand(3, 5)
    packed = ClassGradients(3, packed=True)(net, images, labels, create_graph=True)
    looped = ClassGradients(3, packed=False)(net, images, labels, create_graph=True)
    for a, b in zip(packed, looped):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # both stay differentiable w.r.t. the images, which is what the condenser optimises
    (ga,) = torch.autograd.grad(gradient_distance(packed, [t.detach() * 0.5 + 1 for t in packed]), images)
    (gb,) = torch.autograd.grad(gradient_distance(looped, [t.detach() * 0.5 + 1 for t in looped]), images)
    torch.testing.assert_close(ga, gb, rtol=1e-3, atol=1e-6)


@pytest.mark.slow
def test_compiled_class_gradients_equal_eager_and_second_order_stays_eager():
    net = build_model("convnet-w8-d2-instance-relu-avg", channels=1, num_classes=3, image_size=(28, 28))
    images = torch.randn(3, 5, 1, 28, 28)
    labels = torch.arange(3)[:, None].expand(3, 5)
    compiled = ClassGradients(3, packed=False, compile=True)
    eager = ClassGradients(3, packed=False, compile=False)
    for a, b in zip(compiled(net, images, labels, create_graph=False), eager(net, images, labels, create_graph=False)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # the synthetic images' pass needs a double backward, which compiled graphs lack: it must still work
    syn = images.clone().requires_grad_(True)
    grads = compiled(net, syn, labels, create_graph=True)
    (g,) = torch.autograd.grad(gradient_distance(grads, [t.detach() + 1 for t in grads]), syn)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
