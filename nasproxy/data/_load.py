"""From a dataset's name to normalised tensors with the seeded, class-balanced validation hold-out."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from nasproxy._configs import SplitSpec
from nasproxy._errors import NasproxyError, setting
from nasproxy.data._base import DATASETS, Dataset, DatasetInfo, RawSplits, data_roots
from nasproxy.data.user import load_image_folder, load_tensor_file


def load_dataset(
    name: str,
    *,
    data_root: str | os.PathLike | None = None,
    download: bool = False,
    split: SplitSpec = SplitSpec(),
) -> Dataset:
    """Load a registered dataset (or ``folder:PATH`` / ``tensors:FILE.pt``) with its validation hold-out."""
    info = _resolve(name)
    raw = info.load(data_roots(data_root), download)
    return _prepare(info, raw, split)


def dataset_key(name: str) -> str:
    """The name a dataset is recorded under (user datasets by absolute path), for comparing with records."""
    if name.startswith(("folder:", "tensors:")):
        return _resolve(name).name
    return name


def _resolve(name: str) -> DatasetInfo:
    # user datasets are named by their absolute path: the name is recorded in condensed sets and studies, and a
    # later command run from another folder must find the same files
    if name.startswith("folder:"):
        path = Path(name[len("folder:") :]).expanduser().resolve()
        return DatasetInfo(f"folder:{path}", lambda roots, dl: load_image_folder(path), None, None, "")
    if name.startswith("tensors:"):
        path = Path(name[len("tensors:") :]).expanduser().resolve()
        return DatasetInfo(f"tensors:{path}", lambda roots, dl: load_tensor_file(path), None, None, "")
    return DATASETS.get(name)


def check_splits(name: str, raw: RawSplits) -> int:
    """Refuse data a network cannot be trained and tested on, with one line naming ``name`` and the problem;
    returns the number of classes. Every dataset source passes here before anything is computed."""
    for split in ("train", "test"):
        images, labels = getattr(raw, f"{split}_images"), getattr(raw, f"{split}_labels")
        if images.dim() != 4:
            raise NasproxyError(f"{name}: {split} images must be [N, C, H, W], got shape {list(images.shape)}")
        if labels.dim() != 1:
            raise NasproxyError(f"{name}: {split} labels must be one integer per image, got shape {list(labels.shape)}")
        if len(images) != len(labels):
            raise NasproxyError(
                f"{name}: {len(images)} {split} images but {len(labels)} {split} labels; give every image one label"
            )
        if len(images) == 0:
            raise NasproxyError(f"{name}: the {split} split holds no images")
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise NasproxyError(f"{name}: {split} labels are {labels.dtype}; labels must be integers 0 ... C-1")
    train, test = raw.train_images, raw.test_images
    if train.dtype != test.dtype or train.shape[1:] != test.shape[1:]:
        raise NasproxyError(
            f"{name}: test images are {_describe(test)} but training images {_describe(train)}; "
            "give both splits one dtype, channel count and size"
        )
    negative = sorted({int(v) for v in raw.train_labels[raw.train_labels < 0].unique()})
    negative += sorted({int(v) for v in raw.test_labels[raw.test_labels < 0].unique()})
    if negative:
        raise NasproxyError(f"{name}: labels {_few(sorted(set(negative)))} are negative; labels must be 0 ... C-1")
    classes = int(raw.train_labels.max()) + 1
    missing = sorted(set(range(classes)) - {int(v) for v in raw.train_labels.unique()})
    if missing:
        raise NasproxyError(
            f"{name}: classes {_few(missing)} of 0 ... {classes - 1} have no training image; labels must be "
            "0 ... C-1 with every class in the training split"
        )
    unknown = sorted({int(v) for v in raw.test_labels[raw.test_labels >= classes].unique()})
    if unknown:
        raise NasproxyError(
            f"{name}: test labels {_few(unknown)} are no class of the training split (0 ... {classes - 1})"
        )
    return classes


def _describe(images: torch.Tensor) -> str:
    c, h, w = images.shape[1:]
    return f"{str(images.dtype).removeprefix('torch.')} {c}x{h}x{w}"


def _few(values: list[int]) -> str:
    shown = ", ".join(map(str, values[:5]))
    return shown + (f" (and {len(values) - 5} more)" if len(values) > 5 else "")


def _prepare(info: DatasetInfo, raw: RawSplits, split: SplitSpec) -> Dataset:
    num_classes = check_splits(info.name, raw)
    train_x = raw.train_images.float().div_(255)
    test_x = raw.test_images.float().div_(255)
    if info.mean is None:
        mean = tuple(train_x.mean(dim=(0, 2, 3)).tolist())
        std = tuple(train_x.std(dim=(0, 2, 3)).tolist())
    else:
        mean, std = info.mean, info.std
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    train_x.sub_(m).div_(s)
    test_x.sub_(m).div_(s)
    labels = raw.train_labels.long()
    val_idx = holdout_indices(labels, num_classes, split)
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[val_idx] = False
    fingerprint = hashlib.sha256(val_idx.numpy().astype(np.int64).tobytes()).hexdigest()[:16]
    return Dataset(
        name=info.name,
        train_images=train_x[keep].contiguous(),
        train_labels=labels[keep].contiguous(),
        val_images=train_x[val_idx].contiguous(),
        val_labels=labels[val_idx].contiguous(),
        test_images=test_x.contiguous(),
        test_labels=raw.test_labels.long().contiguous(),
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        num_classes=num_classes,
        split=split,
        val_fingerprint=fingerprint,
    )


def holdout_indices(labels: torch.Tensor, num_classes: int, split: SplitSpec) -> torch.Tensor:
    """Class-balanced, seeded hold-out indices (sorted). Remainders go to the lowest classes."""
    if split.holdout < 0 or split.holdout >= len(labels):
        raise NasproxyError(
            f"validation hold-out of {split.holdout} images is impossible with {len(labels)} training "
            f"images; pass {setting('holdout')} between 0 and the training-set size"
        )
    gen = torch.Generator().manual_seed(split.seed)
    per_class = [split.holdout // num_classes + (c < split.holdout % num_classes) for c in range(num_classes)]
    chosen = []
    for c in range(num_classes):
        idx = torch.nonzero(labels == c).flatten()
        if per_class[c] > len(idx):
            raise NasproxyError(f"class {c} has only {len(idx)} images; lower {setting('holdout')}")
        chosen.append(idx[torch.randperm(len(idx), generator=gen)[: per_class[c]]])
    return torch.cat(chosen).sort().values
