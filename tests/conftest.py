from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from nasproxy.data import DEBIAN_FASHION_MNIST, SplitSpec, load_dataset
from tests._helpers import make_idx_dataset


def pytest_configure(config):
    """`nox -s tests` runs a pytest-xdist worker per core, and each worker gets its share of the cores' threads
    (the processes its tests start too, through the environment): workers of a thread per core each spin
    against each other, and the suite gets slower than one worker alone (README.md, Contributing)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
        torch.set_num_threads(int(threads))


@pytest.fixture
def idx_root(tmp_path: Path) -> Path:
    make_idx_dataset(tmp_path / "MNIST" / "raw")
    return tmp_path


@pytest.fixture
def small_mnist(idx_root: Path):
    return load_dataset("mnist", data_root=idx_root, split=SplitSpec(holdout=50, seed=0))


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
