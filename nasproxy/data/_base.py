"""What every dataset module shares: the in-memory :class:`Dataset`, the raw splits a reader returns, the
registry entry that describes a dataset, and where readers look for files."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from nasproxy._configs import SplitSpec
from nasproxy._registry import Registry


@dataclass(frozen=True)
class Dataset:
    name: str
    train_images: torch.Tensor  # [N, C, H, W] float32, normalised
    train_labels: torch.Tensor  # [N] int64
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    split: SplitSpec
    val_fingerprint: str  # hash of the hold-out indices: proves two artifacts share a hold-out

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    def class_indices(self) -> list[torch.Tensor]:
        return [torch.nonzero(self.train_labels == c).flatten() for c in range(self.num_classes)]


@dataclass(frozen=True)
class RawSplits:
    """Un-normalised uint8 images ``[N, C, H, W]`` and int64 labels, as read from disk."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    load: Callable[[list[Path], bool], RawSplits]  # (roots to search, download allowed) -> raw splits
    mean: tuple[float, ...] | None  # None: computed from the training images
    std: tuple[float, ...] | None
    how_to_get: str


DATASETS: Registry[DatasetInfo] = Registry("dataset")


def data_roots(data_root: str | os.PathLike | None = None) -> list[Path]:
    roots = []
    if data_root:
        roots.append(Path(data_root).expanduser())
    if os.environ.get("NASPROXY_DATA"):
        roots.append(Path(os.environ["NASPROXY_DATA"]).expanduser())
    roots += [Path("data"), Path.home() / ".cache" / "nasproxy" / "data"]
    return roots


def not_found_message(what: str, roots: list[Path], subdirs: list[str], extra: list[Path], how: str) -> str:
    looked = sorted({str(r / s) for r in roots for s in subdirs[:1]} | {str(e) for e in extra})
    return f"{what} not found (looked in {', '.join(looked)}); {how}"
