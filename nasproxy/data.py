"""Datasets: an offline-first registry of image-classification sets, held in memory as normalised tensors.

Every dataset comes back as a :class:`Dataset` with a fixed, seeded, class-balanced validation hold-out
carved out of the training set. Condensation only ever sees ``train``; search scores on ``val``; the
paper's accuracies are on ``test``. The split is described by :class:`SplitSpec`, which proxies record so
that every later step uses the same one.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nasproxy._configs import SplitSpec
from nasproxy._errors import DataNotFoundError, NasproxyError, setting
from nasproxy._registry import Registry

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


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
    # user datasets are named by their absolute path: the name is recorded in proxy files and studies, and a
    # later command run from another folder must find the same files
    if name.startswith("folder:"):
        path = Path(name[len("folder:") :]).expanduser().resolve()
        return DatasetInfo(f"folder:{path}", lambda roots, dl: _load_image_folder(path), None, None, "")
    if name.startswith("tensors:"):
        path = Path(name[len("tensors:") :]).expanduser().resolve()
        return DatasetInfo(f"tensors:{path}", lambda roots, dl: _load_tensor_file(path), None, None, "")
    return DATASETS.get(name)


def _prepare(info: DatasetInfo, raw: RawSplits, split: SplitSpec) -> Dataset:
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
    num_classes = int(max(labels.max(), raw.test_labels.max())) + 1
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


# --- readers for the standard on-disk formats -------------------------------------------------------------


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


def _mnist_like(tv_name: str, extra: list[Path], how: str):
    def load(roots: list[Path], download: bool) -> RawSplits:
        subdirs = [f"{tv_name}/raw", tv_name, tv_name.lower(), "fashion-mnist" if "Fashion" in tv_name else "mnist", ""]
        d = _find_idx_dir(roots, subdirs, extra)
        if d is None and download:
            import torchvision

            getattr(torchvision.datasets, tv_name)(str(roots[0]), train=True, download=True)
            d = _find_idx_dir(roots, subdirs, [])
        if d is None:
            raise DataNotFoundError(_not_found_message(tv_name, roots, subdirs, extra, how))
        images = {s: read_idx(_idx_file(d, f"{s}-images-idx3-ubyte")).unsqueeze(1) for s in ("train", "t10k")}
        labels = {s: read_idx(_idx_file(d, f"{s}-labels-idx1-ubyte")).long() for s in ("train", "t10k")}
        return RawSplits(images["train"], labels["train"], images["t10k"], labels["t10k"])

    return load


def _not_found_message(what: str, roots: list[Path], subdirs: list[str], extra: list[Path], how: str) -> str:
    looked = sorted({str(r / s) for r in roots for s in subdirs[:1]} | {str(e) for e in extra})
    return f"{what} not found (looked in {', '.join(looked)}); {how}"


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


def _load_data_pickle(path: Path):
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


def _cifar(folder: str, train_files: list[str], test_files: list[str], label_key: str, tv_name: str, how: str):
    def load(roots: list[Path], download: bool) -> RawSplits:
        d = next((r / folder for r in roots if (r / folder / test_files[0]).exists()), None)
        if d is None and download:
            import torchvision

            getattr(torchvision.datasets, tv_name)(str(roots[0]), train=True, download=True)
            d = roots[0] / folder
        if d is None:
            raise DataNotFoundError(_not_found_message(tv_name, roots, [folder], [], how))

        def read(files: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
            xs, ys = [], []
            for f in files:
                batch = _load_data_pickle(d / f)
                xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(batch[label_key], dtype=np.int64))
            return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

        train_x, train_y = read(train_files)
        test_x, test_y = read(test_files)
        return RawSplits(train_x, train_y, test_x, test_y)

    return load


def _svhn(roots: list[Path], download: bool) -> RawSplits:
    from scipy.io import loadmat

    names = ("train_32x32.mat", "test_32x32.mat")
    d = next((r / sub for r in roots for sub in ("svhn", "SVHN", "") if (r / sub / names[1]).exists()), None)
    if d is None and download:
        import torchvision

        for split in ("train", "test"):
            torchvision.datasets.SVHN(str(roots[0] / "svhn"), split=split, download=True)
        d = roots[0] / "svhn"
    if d is None:
        raise DataNotFoundError(
            _not_found_message(
                "SVHN",
                roots,
                ["svhn"],
                [],
                f"put train_32x32.mat and test_32x32.mat there, or pass {setting('download')} on a machine with "
                "internet",
            )
        )
    out = []
    for n in names:
        mat = loadmat(d / n)
        x = torch.from_numpy(np.ascontiguousarray(mat["X"].transpose(3, 2, 0, 1)))
        y = torch.from_numpy(mat["y"].astype(np.int64).flatten() % 10)  # SVHN stores digit 0 as label 10
        out += [x, y]
    return RawSplits(*out)


def _load_image_folder(path: Path) -> RawSplits:
    """``path/train/<class>/*.png`` and ``path/test/<class>/*.png`` (torchvision's ImageFolder layout)."""
    from PIL import Image

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
                if f.suffix.lower() not in {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}:
                    continue
                img = np.asarray(Image.open(f))
                xs.append(img[None] if img.ndim == 2 else img.transpose(2, 0, 1))
                ys.append(label)
        if not xs:
            raise DataNotFoundError(f"{path / split} holds no images")
        if len({x.shape for x in xs}) > 1:
            raise NasproxyError(f"images under {path / split} differ in size or channels; resize them to one shape")
        return torch.from_numpy(np.stack(xs)), torch.tensor(ys)

    return RawSplits(*read("train"), *read("test"))


def _load_tensor_file(path: Path) -> RawSplits:
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
    for k in ("train_images", "test_images"):
        if blob[k].dtype != torch.uint8 or blob[k].dim() != 4:
            raise NasproxyError(f"{path}: {k} must be a uint8 tensor [N, C, H, W]")
    return RawSplits(*(blob[k] for k in keys))


_FMNIST_HOW = (
    f"install it with `apt-get install dataset-fashion-mnist`, put the IDX files in {setting('data_root')}, "
    f"or pass {setting('download')}"
)
DATASETS.register(
    "fashion-mnist",
    DatasetInfo(
        "fashion-mnist",
        _mnist_like("FashionMNIST", [DEBIAN_FASHION_MNIST], _FMNIST_HOW),
        (0.2861,),
        (0.3530,),
        _FMNIST_HOW,
    ),
)
_MNIST_HOW = f"put the MNIST IDX files under <{setting('data_root')}>/MNIST/raw or pass {setting('download')}"
DATASETS.register("mnist", DatasetInfo("mnist", _mnist_like("MNIST", [], _MNIST_HOW), (0.1307,), (0.3081,), _MNIST_HOW))
_CIFAR_HOW = f"extract the python-version archive into {setting('data_root')} or pass {setting('download')}"
DATASETS.register(
    "cifar10",
    DatasetInfo(
        "cifar10",
        _cifar(
            "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)],
            ["test_batch"],
            "labels",
            "CIFAR10",
            _CIFAR_HOW,
        ),
        (0.4914, 0.4822, 0.4465),
        (0.2023, 0.1994, 0.2010),
        _CIFAR_HOW,
    ),
)
DATASETS.register(
    "cifar100",
    DatasetInfo(
        "cifar100",
        _cifar("cifar-100-python", ["train"], ["test"], "fine_labels", "CIFAR100", _CIFAR_HOW),
        (0.5071, 0.4866, 0.4409),
        (0.2673, 0.2564, 0.2762),
        _CIFAR_HOW,
    ),
)
DATASETS.register(
    "svhn",
    DatasetInfo("svhn", _svhn, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), f"see {setting('download')}"),
)
