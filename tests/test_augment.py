"""DSA's augmentations, batched, against a per-image re-derivation of each operation's definition; the
Siamese property (a class's real and synthetic images get the same draw); and training with augmentation."""

import math

import pytest
import torch
import torch.nn.functional as F

from nasproxy import NasproxyError, TrainConfig, train_from_scratch
from nasproxy.augment import (
    DSA_STRATEGY,
    Draw,
    apply,
    augment_batch,
    default_strategy,
    draw,
    parse_strategy,
    resolve,
)
from nasproxy.models import ConvNetSpec, convnet_builder


def _images(groups=3, n=2, c=1, size=8, seed=0):
    return torch.randn(groups, n, c, size, size, generator=torch.Generator().manual_seed(seed))


def _one(op: str, u: list[list[float]]) -> Draw:
    return Draw((op,), torch.zeros(len(u), dtype=torch.long), torch.tensor(u))


def test_strategies_parse_and_default_to_dsas():
    assert parse_strategy(DSA_STRATEGY) == ("color", "crop", "cutout", "flip", "scale", "rotate")
    assert "flip" not in default_strategy("mnist") and "flip" in default_strategy("fashion-mnist")
    assert (
        resolve("auto", "fashion-mnist") == DSA_STRATEGY and resolve("none", "x") is None and resolve(None, "x") is None
    )
    with pytest.raises(NasproxyError, match="use operations from"):
        parse_strategy("color_blur")


def test_flip_and_colour_follow_their_definitions():
    x = _images(groups=2, c=3)
    flipped = apply(x, _one("flip", [[0.2, 0, 0, 0], [0.7, 0, 0, 0]]))
    assert torch.equal(flipped[0], x[0].flip(-1)) and torch.equal(flipped[1], x[1])
    u = [0.9, 0.25, 0.6, 0.0]
    got = apply(x[:1], _one("color", [u]))[0]
    want = x[0] + (u[0] - 0.5) * 1.0
    mean = want.mean(1, keepdim=True)  # over channels, per image and pixel
    want = (want - mean) * (u[1] * 2.0) + mean
    mean = want.mean((1, 2, 3), keepdim=True)
    want = (want - mean) * (u[2] + 0.5) + mean
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize(("ux", "uy"), [(0.0, 0.99), (0.5, 0.5), (0.3, 0.8)])
def test_crop_translates_with_zero_fill(ux, uy):
    x = _images(groups=1, size=16)
    got = apply(x, _one("crop", [[ux, uy, 0, 0]]))[0]
    shift = int(16 * 0.125 + 0.5)
    dx, dy = int(ux * (2 * shift + 1)) - shift, int(uy * (2 * shift + 1)) - shift
    want = torch.zeros_like(x[0])
    for i in range(16):
        for j in range(16):
            si, sj = i + dx, j + dy  # output (i, j) reads input (i + dx, j + dy), zero outside
            if 0 <= si < 16 and 0 <= sj < 16:
                want[..., i, j] = x[0][..., si, sj]
    assert torch.equal(got, want)


def test_cutout_zeroes_one_half_size_square():
    x = _images(groups=1, size=16).abs() + 1  # no zeros of its own
    got = apply(x, _one("cutout", [[0.5, 0.1, 0, 0]]))[0]
    centre_x, centre_y = int(0.5 * 17), int(0.1 * 17)
    rows = [i for i in range(16) if centre_x - 4 <= i < centre_x + 4]
    cols = [j for j in range(16) if centre_y - 4 <= j < centre_y + 4]
    zero = got[0, 0] == 0
    assert zero.sum() == len(rows) * len(cols)
    assert all(zero[i, j] for i in rows for j in cols)


@pytest.mark.parametrize("op", ["scale", "rotate"])
def test_scale_and_rotate_are_the_affine_resampling_they_name(op):
    x = _images(groups=1, size=12)
    u = [0.8, 0.3, 0, 0]
    got = apply(x, _one(op, [u]))[0]
    if op == "scale":
        sx, sy = (u[0] * (1.2 - 1 / 1.2) + 1 / 1.2), (u[1] * (1.2 - 1 / 1.2) + 1 / 1.2)
        theta = torch.tensor([[sx, 0, 0], [0, sy, 0]])
    else:
        a = (u[0] - 0.5) * 2 * 15 / 180 * math.pi
        theta = torch.tensor([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0]])
    for image, out in zip(x[0], got):
        grid = F.affine_grid(theta[None], [1, *image.shape], align_corners=False)
        torch.testing.assert_close(out, F.grid_sample(image[None], grid, align_corners=False)[0])


def test_siamese_groups_share_their_draw_and_gradients_reach_the_images():
    d = draw(4, parse_strategy(DSA_STRATEGY), torch.Generator().manual_seed(3))
    real, syn = _images(groups=4, n=5, seed=1), _images(groups=4, n=2, seed=2).requires_grad_()
    together = apply(torch.cat([real, syn], 1), d)
    torch.testing.assert_close(together[:, :5], apply(real, d))
    torch.testing.assert_close(together[:, 5:], apply(syn, d))
    apply(syn, d).square().sum().backward()
    assert syn.grad is not None and syn.grad.abs().sum() > 0


def test_a_batch_gets_one_operation_and_a_draw_per_image():
    ops = parse_strategy(DSA_STRATEGY)
    d = draw(6, ops, torch.Generator().manual_seed(0), one_op=True)
    assert len(set(d.choice.tolist())) == 1 and len(set(d.uniform[:, 0].tolist())) == 6
    x = _images(groups=6, n=1).squeeze(1)
    a = augment_batch(x, ops, torch.Generator().manual_seed(5))
    b = augment_batch(x, ops, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == x.shape


def test_training_with_augmentation_is_seeded_and_packing_does_not_change_it():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.randn(24, 1, 28, 28, generator=g), torch.arange(24) % 3
    builder = convnet_builder(ConvNetSpec(width=8, depth=1, norm="instance", pool="avg"))

    def train(**kw):
        cfg = TrainConfig(epochs=2, batch_size=8, augment=DSA_STRATEGY, compile=False, backend="aten", **kw)
        nets = train_from_scratch(
            lambda: builder(channels=1, num_classes=3, image_size=(28, 28)), images, labels, cfg, seeds=[1, 2]
        )
        return [n.state_dict() for n in nets]

    one, packed, again = train(pack=1), train(pack=2), train(pack=1)
    plain = train_from_scratch(
        lambda: builder(channels=1, num_classes=3, image_size=(28, 28)),
        images,
        labels,
        TrainConfig(epochs=2, batch_size=8, compile=False, backend="aten"),
        seeds=[1],
    )[0].state_dict()
    for a, b, c in zip(one, packed, again):
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
            assert torch.equal(a[key], c[key])
    assert any(not torch.equal(one[0][k], plain[k]) for k in plain)  # the augmentation changed training
