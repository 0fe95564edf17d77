from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from nasproxy.data import DEBIAN_FASHION_MNIST, SplitSpec, load_dataset


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def make_idx_dataset(
    root: Path, *, n_train: int = 200, n_test: int = 50, classes: int = 10, seed: int = 0, compress: bool = True
) -> Path:
    """A small MNIST-format dataset whose classes are separable (class c is brighter in row block c)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % classes
        images = rng.integers(0, 60, size=(n, 28, 28))
        for i, c in enumerate(labels):
            images[i, 2 * c : 2 * c + 3, :] += 180
        write_idx(root / f"{split}-images-idx3-ubyte", images, compress=compress)
        write_idx(root / f"{split}-labels-idx1-ubyte", labels, compress=compress)
    return root


@pytest.fixture
def idx_root(tmp_path: Path) -> Path:
    make_idx_dataset(tmp_path / "MNIST" / "raw")
    return tmp_path


@pytest.fixture
def small_mnist(idx_root: Path):
    return load_dataset("mnist", data_root=idx_root, split=SplitSpec(holdout=50, seed=0))


needs_fmnist = pytest.mark.skipif(
    not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists(),
    reason="needs `apt-get install dataset-fashion-mnist` (CI installs it)",
)


@pytest.fixture(scope="session")
def fmnist():
    if not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("needs `apt-get install dataset-fashion-mnist` (CI installs it)")
    return load_dataset("fashion-mnist")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _process_settings():
    """The process-wide settings the CLI and every search worker make (deterministic cuDNN, flushed denormals)."""
    from nasproxy.engine import configure_process

    configure_process()


@pytest.fixture(scope="session")
def small_fmnist(fmnist, tmp_path_factory):
    """200 real training images per class and 50 test images per class, as a `tensors:` dataset."""
    path = tmp_path_factory.mktemp("data") / "fmnist-small.pt"

    def uint8(x):
        mean, std = fmnist.mean[0], fmnist.std[0]
        return (x * std + mean).mul(255).round().clamp(0, 255).to(torch.uint8)

    def take(labels, per_class):
        return torch.cat([torch.nonzero(labels == c).flatten()[:per_class] for c in range(10)])

    train, test = take(fmnist.train_labels, 200), take(fmnist.test_labels, 50)
    blob = {
        "train_images": uint8(fmnist.train_images[train]),
        "train_labels": fmnist.train_labels[train],
        "test_images": uint8(fmnist.test_images[test]),
        "test_labels": fmnist.test_labels[test],
    }
    torch.save(blob, path)
    return f"tensors:{path}"
