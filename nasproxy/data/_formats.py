"""Readers for the standard on-disk formats that several datasets share: IDX (the MNIST family) and the
pickled batches of CIFAR's python version, unpickled safely."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import torch

from nasproxy._errors import DataNotFoundError, NasproxyError
from nasproxy.data._base import RawSplits, not_found_message


def _open_maybe_gz(path: Path) -> bytes:
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            return f.read()
    return path.read_bytes()


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file (``.gz`` or plain): uint8 images ``[N, H, W]`` or labels ``[N]``."""
    data = _open_maybe_gz(path)
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise NasproxyError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise NasproxyError(f"{path} is truncated: expected {expected} bytes of data, found {len(data) - offset}")
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims).copy())


def _find_idx_dir(roots: list[Path], subdirs: list[str], extra: list[Path]) -> Path | None:
    for root in roots:
        for sub in subdirs:
            d = root / sub
            if (d / "train-images-idx3-ubyte.gz").exists() or (d / "train-images-idx3-ubyte").exists():
                return d
    for d in extra:
        if (d / "train-images-idx3-ubyte.gz").exists():
            return d
    return None


def _idx_file(d: Path, stem: str) -> Path:
    gz = d / f"{stem}.gz"
    return gz if gz.exists() else d / stem


def idx_loader(tv_name: str, extra: list[Path], how: str):
    """A reader of an MNIST-like dataset's four IDX files, found under the roots (in torchvision's folder
    names) or in ``extra``; torchvision downloads them where allowed."""

    def load(roots: list[Path], download: bool) -> RawSplits:
        subdirs = [f"{tv_name}/raw", tv_name, tv_name.lower(), "fashion-mnist" if "Fashion" in tv_name else "mnist", ""]
        d = _find_idx_dir(roots, subdirs, extra)
        if d is None and download:
            import torchvision

            getattr(torchvision.datasets, tv_name)(str(roots[0]), train=True, download=True)
            d = _find_idx_dir(roots, subdirs, [])
        if d is None:
            raise DataNotFoundError(not_found_message(tv_name, roots, subdirs, extra, how))
        images = {s: read_idx(_idx_file(d, f"{s}-images-idx3-ubyte")).unsqueeze(1) for s in ("train", "t10k")}
        labels = {s: read_idx(_idx_file(d, f"{s}-labels-idx1-ubyte")).long() for s in ("train", "t10k")}
        return RawSplits(images["train"], labels["train"], images["t10k"], labels["t10k"])

    return load


# what a CIFAR python batch holds besides dicts, lists, strings, bytes and numbers: numpy arrays
_PICKLE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _ForbiddenType(pickle.UnpicklingError):
    pass


class _DataUnpickler(pickle.Unpickler):
    """Admits only the types a pickle-format dataset file contains: unpickling anything else could run code."""

    def find_class(self, module: str, name: str):
        if (module, name) in _PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise _ForbiddenType(f"{module}.{name}")


def load_data_pickle(path: Path):
    """Unpickle a dataset batch file, refusing every type such a file does not hold."""
    try:
        with open(path, "rb") as fh:
            return _DataUnpickler(fh, encoding="latin1").load()
    except _ForbiddenType as exc:
        raise NasproxyError(
            f"{path} is not a plain dataset file: it holds a {exc} object, which could run code when loaded; "
            "replace it with the original download"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise NasproxyError(
            f"{path} is damaged ({exc.__class__.__name__}); replace it with the original download"
        ) from None
