"""Differentiable Siamese Augmentation (Zhao & Bilen, ICML 2021) as batched tensor operations.

A strategy names the operations an augmentation may draw from, e.g. ``color_crop_cutout_flip_scale_rotate``
(DSA's default). Images come in groups, ``[G, n, C, H, W]``: every image of a group gets the same operation
with the same parameters (DSA's "Siamese" mode, where a class's real and synthetic images are augmented
alike: draw :class:`Draw` once with :func:`draw` and :func:`apply` it to both), and each group gets its own.
Training on a condensed set augments every image on its own (groups of one) with one operation per batch, as DSA's
evaluation does (:func:`augment_batch`). Every operation is differentiable with respect to the images.

The ranges are DSA's: scale each axis by [1/1.2, 1.2], rotate by up to 15 degrees, translate by up to 1/8
of the image with zero fill, cut out a zeroed square of half the image's side, flip with probability 1/2,
and colour: brightness +-0.5, saturation x [0, 2], contrast x [0.5, 1.5].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nasproxy._errors import NasproxyError

OPERATIONS = ("color", "crop", "cutout", "flip", "scale", "rotate")
DSA_STRATEGY = "color_crop_cutout_flip_scale_rotate"
# datasets whose classes change under a horizontal flip (digits): DSA leaves flips out for them
_NO_FLIP = ("mnist", "svhn", "usps")

SCALE, ROTATE_DEGREES, CROP, CUTOUT, FLIP = 1.2, 15.0, 0.125, 0.5, 0.5
BRIGHTNESS, SATURATION, CONTRAST = 1.0, 2.0, 0.5


def parse_strategy(strategy: str) -> tuple[str, ...]:
    ops = tuple(op for op in strategy.split("_") if op)
    unknown = [op for op in ops if op not in OPERATIONS]
    if unknown or not ops:
        raise NasproxyError(
            f"augmentation strategy {strategy!r}: use operations from {', '.join(OPERATIONS)} joined by '_', "
            f"e.g. {DSA_STRATEGY}"
        )
    return ops


def default_strategy(dataset: str) -> str:
    """DSA's strategy, without flips for digit datasets (a flipped digit is another glyph)."""
    if dataset.lower() in _NO_FLIP:
        return DSA_STRATEGY.replace("_flip", "")
    return DSA_STRATEGY


def resolve(setting: str | None, dataset: str) -> str | None:
    """A user's augmentation setting as a strategy: ``None``/``"none"`` off, ``"auto"`` DSA's for the dataset."""
    if setting is None or setting == "none":
        return None
    if setting == "auto":
        return default_strategy(dataset)
    parse_strategy(setting)
    return setting


@dataclass(frozen=True)
class Draw:
    """One operation and its parameters for each of G groups (CPU tensors, moved to the images' device)."""

    ops: tuple[str, ...]
    choice: torch.Tensor  # [G] index into ops
    uniform: torch.Tensor  # [G, 4] uniforms in [0, 1): each operation reads what it needs


def draw(groups: int, ops: tuple[str, ...], generator: torch.Generator, *, one_op: bool = False) -> Draw:
    """Operations and parameters for ``groups`` groups; ``one_op``: the same operation for all of them."""
    choice = torch.randint(len(ops), (1 if one_op else groups,), generator=generator).expand(groups)
    return Draw(ops, choice.clone(), torch.rand(groups, 4, generator=generator))


def apply(x: torch.Tensor, d: Draw) -> torch.Tensor:
    """Augment ``x`` [G, n, C, H, W]: group g with operation ``d.ops[d.choice[g]]`` and parameters ``d.uniform[g]``."""
    if x.dim() != 5 or x.shape[0] != len(d.choice):
        raise ValueError(f"apply needs [G={len(d.choice)}, n, C, H, W] images, got {tuple(x.shape)}")
    out = x
    choice, uniform = d.choice.to(x.device), d.uniform.to(x.device, x.dtype)
    for index, op in enumerate(d.ops):
        groups = (choice == index).nonzero().flatten()
        if len(groups) == 0:
            continue
        part = _OPERATIONS[op](x[groups], uniform[groups])
        out = out.index_copy(0, groups, part) if len(groups) < len(x) else part
    return out


def augment_batch(x: torch.Tensor, ops: tuple[str, ...], generator: torch.Generator) -> torch.Tensor:
    """Each image of ``x`` [N, C, H, W] augmented on its own, with one operation for the whole batch."""
    d = draw(len(x), ops, generator, one_op=True)
    return apply(x.unsqueeze(1), d).squeeze(1)


def _per_group(u: torch.Tensor) -> torch.Tensor:
    return u.view(-1, 1, 1, 1, 1)


def _color(x, u):
    x = x + (_per_group(u[:, 0]) - 0.5) * BRIGHTNESS
    mean = x.mean(dim=2, keepdim=True)
    x = (x - mean) * (_per_group(u[:, 1]) * SATURATION) + mean
    mean = x.mean(dim=(2, 3, 4), keepdim=True)
    return (x - mean) * (_per_group(u[:, 2]) + CONTRAST) + mean


def _flip(x, u):
    return torch.where(_per_group(u[:, 0]) < FLIP, x.flip(-1), x)


def _affine(x, theta):
    """``theta`` [G, 2, 3] applied to every image of its group (bilinear, zero fill)."""
    g, n, c, h, w = x.shape
    theta = theta.repeat_interleave(n, dim=0)
    grid = F.affine_grid(theta, [g * n, c, h, w], align_corners=False)
    return F.grid_sample(x.reshape(g * n, c, h, w), grid, align_corners=False).view(g, n, c, h, w)


def _scale(x, u):
    sx = u[:, 0] * (SCALE - 1 / SCALE) + 1 / SCALE
    sy = u[:, 1] * (SCALE - 1 / SCALE) + 1 / SCALE
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, zero], -1), torch.stack([zero, sy, zero], -1)], 1)
    return _affine(x, theta)


def _rotate(x, u):
    angle = (u[:, 0] - 0.5) * 2 * ROTATE_DEGREES / 180 * math.pi
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], 1)
    return _affine(x, theta)


def _shift_index(size: int, shift: torch.Tensor) -> torch.Tensor:
    """[G, size] source positions in a map padded by one zero on each side (clamped: zero fill)."""
    return (torch.arange(size, device=shift.device) + shift[:, None] + 1).clamp(0, size + 1)


def _crop(x, u):
    g, n, c, h, w = x.shape
    max_x, max_y = int(h * CROP + 0.5), int(w * CROP + 0.5)
    shift_x = (u[:, 0] * (2 * max_x + 1)).long().clamp(max=2 * max_x) - max_x
    shift_y = (u[:, 1] * (2 * max_y + 1)).long().clamp(max=2 * max_y) - max_y
    padded = F.pad(x, (1, 1, 1, 1))
    rows = _shift_index(h, shift_x).view(g, 1, 1, h, 1).expand(g, n, c, h, w + 2)
    x = padded.gather(3, rows)
    cols = _shift_index(w, shift_y).view(g, 1, 1, 1, w).expand(g, n, c, h, w)
    return x.gather(4, cols)


def _cutout(x, u):
    g, n, c, h, w = x.shape
    size_x, size_y = int(h * CUTOUT + 0.5), int(w * CUTOUT + 0.5)
    centre_x = (u[:, 0] * (h + 1 - size_x % 2)).long()
    centre_y = (u[:, 1] * (w + 1 - size_y % 2)).long()
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    start_x, start_y = (centre_x - size_x // 2)[:, None], (centre_y - size_y // 2)[:, None]
    in_rows = (rows >= start_x) & (rows < start_x + size_x)
    in_cols = (cols >= start_y) & (cols < start_y + size_y)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])  # [G, H, W]
    return x * keep.view(g, 1, 1, h, w).to(x.dtype)


_OPERATIONS = {
    "color": _color,
    "crop": _crop,
    "cutout": _cutout,
    "flip": _flip,
    "scale": _scale,
    "rotate": _rotate,
}
