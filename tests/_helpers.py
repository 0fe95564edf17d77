"""What several test modules share that is not a fixture: data built the same way, and skip markers."""

import dataclasses
import gzip
import os
import shutil
import socket
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nasproxy.data import DEBIAN_FASHION_MNIST

needs_fmnist = pytest.mark.skipif(
    not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists(),
    reason="needs `apt-get install dataset-fashion-mnist` (CI installs it)",
)

# Where a C++ compiler exists (CI installs g++) the kernels must build: a failed build fails these tests.
HAS_COMPILER = shutil.which("c++") is not None or shutil.which("g++") is not None
needs_compiler = pytest.mark.skipif(not HAS_COMPILER, reason="no C++ compiler on this machine")

# The tests on the PostgreSQL test server run on one pytest-xdist worker, one after another: one of them restarts
# the server, another checks that the studies it holds are unchanged.
uses_the_postgresql_server = pytest.mark.xdist_group("postgresql")


def separable(n: int, classes: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 28x28 images whose ``classes`` classes a small ConvNet learns in a few steps (class c is
    brighter in row block c)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    images = torch.randn(n, 1, 28, 28, generator=g) * 0.3
    for c in range(classes):
        images[labels == c, :, 4 * c : 4 * c + 4, :] += 2.0
    return images, labels


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        # the fastest level: these files are written once and read a few times; level 9 took seconds
        with gzip.open(path.with_name(path.name + ".gz"), "wb", compresslevel=1) as f:
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


# the fastest setting of every option a condenser may take
_FAST_CONDENSE = {
    "iterations": 1,
    "model": "convnet-w8-d1-instance-relu-avg",
    "real_batch": 4,
    "outer_loop": 1,
    "inner_loop": 1,
    "epochs": 1,
}


def fast_condense_options(method: str) -> dict:
    """The fastest settings among the options that condenser ``method`` takes (its Config's fields)."""
    from nasproxy.condensers import CONDENSERS

    fields = {f.name for f in dataclasses.fields(CONDENSERS.get(method).Config)}
    return {k: v for k, v in _FAST_CONDENSE.items() if k in fields}


def claim(trial, arch: str | None, *, pid: int | None = None) -> None:
    """Mark an Optuna trial as a worker's claim of ``arch``, as the runner does: this host, a live process
    (this one, unless ``pid``), a fresh heartbeat."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid() if pid is None else pid)
    trial.set_user_attr("heartbeat", time.time())
    if arch is not None:
        trial.set_user_attr("arch_id", arch)
