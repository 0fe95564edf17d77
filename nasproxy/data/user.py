"""A user's own images, named on the command line rather than registered: ``folder:PATH`` (torchvision's
ImageFolder layout) and ``tensors:FILE.pt`` (a saved dict of uint8 tensors)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from nasproxy._errors import DataNotFoundError, NasproxyError
from nasproxy.data._base import RawSplits

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def load_image_folder(path: Path) -> RawSplits:
    """``path/train/<class>/*.png`` and ``path/test/<class>/*.png`` (torchvision's ImageFolder layout)."""

    if not (path / "train").is_dir() or not (path / "test").is_dir():
        raise DataNotFoundError(
            f"{path} is not an image folder dataset; it needs train/<class>/ and test/<class>/ sub-folders"
        )
    classes = sorted(p.name for p in (path / "train").iterdir() if p.is_dir())
    if not classes:
        raise DataNotFoundError(f"{path / 'train'} has no class sub-folders")

    def read(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for label, cls in enumerate(classes):
            for f in sorted((path / split / cls).glob("*")):
                if f.suffix.lower() not in _IMAGE_SUFFIXES:
                    continue
                img = _read_image(f)
                xs.append(img[None] if img.ndim == 2 else img.transpose(2, 0, 1))
                ys.append(label)
        if not xs:
            raise DataNotFoundError(f"{path / split} holds no images")
        if len({x.shape for x in xs}) > 1:
            raise NasproxyError(f"images under {path / split} differ in size or channels; resize them to one shape")
        return torch.from_numpy(np.stack(xs)), torch.tensor(ys)

    return RawSplits(*read("train"), *read("test"))


def _read_image(path: Path) -> np.ndarray:
    """One image file as an array; a file Pillow cannot read (truncated, corrupt, or over its
    decompression-bomb limit, which stays in force) is one line naming it."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image)
    except Image.DecompressionBombError as exc:
        raise NasproxyError(f"image {path} is too large to open safely ({exc}); resize it") from None
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's ways of saying "not a readable image"
        raise NasproxyError(f"cannot read image {path} ({exc}); fix or remove the file") from None


def load_tensor_file(path: Path) -> RawSplits:
    """A ``torch.save``d dict with uint8 ``train_images``/``test_images`` [N,C,H,W] and int labels."""
    if not path.exists():
        raise DataNotFoundError(f"tensor dataset {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch's remarks on a foreign file would precede our one line
            warnings.simplefilter("ignore")
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise NasproxyError(f"{path} is not a readable torch file ({exc.__class__.__name__})") from None
    keys = ("train_images", "train_labels", "test_images", "test_labels")
    if not isinstance(blob, dict) or any(k not in blob for k in keys):
        raise NasproxyError(f"{path} must hold a dict with keys {', '.join(keys)}")
    for k in ("train_labels", "test_labels"):
        if not isinstance(blob[k], torch.Tensor):
            raise NasproxyError(f"{path}: {k} must be a tensor of integer labels")
    for k in ("train_images", "test_images"):
        if blob[k].dtype != torch.uint8 or blob[k].dim() != 4:
            raise NasproxyError(f"{path}: {k} must be a uint8 tensor [N, C, H, W]")
    return RawSplits(*(blob[k] for k in keys))
