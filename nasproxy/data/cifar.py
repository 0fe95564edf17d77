"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009), from the python-version archives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nasproxy._errors import DataNotFoundError, setting
from nasproxy.data._base import DATASETS, DatasetInfo, RawSplits, not_found_message
from nasproxy.data._formats import load_data_pickle

_HOW = f"extract the python-version archive into {setting('data_root')} or pass {setting('download')}"


def _cifar(folder: str, train_files: list[str], test_files: list[str], label_key: str, tv_name: str):
    def load(roots: list[Path], download: bool) -> RawSplits:
        d = next((r / folder for r in roots if (r / folder / test_files[0]).exists()), None)
        if d is None and download:
            import torchvision

            getattr(torchvision.datasets, tv_name)(str(roots[0]), train=True, download=True)
            d = roots[0] / folder
        if d is None:
            raise DataNotFoundError(not_found_message(tv_name, roots, [folder], [], _HOW))

        def read(files: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
            xs, ys = [], []
            for f in files:
                batch = load_data_pickle(d / f)
                xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(batch[label_key], dtype=np.int64))
            return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

        return RawSplits(*read(train_files), *read(test_files))

    return load


DATASETS.register(
    "cifar10",
    DatasetInfo(
        "cifar10",
        _cifar("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels", "CIFAR10"),
        (0.4914, 0.4822, 0.4465),
        (0.2023, 0.1994, 0.2010),
        _HOW,
    ),
)
DATASETS.register(
    "cifar100",
    DatasetInfo(
        "cifar100",
        _cifar("cifar-100-python", ["train"], ["test"], "fine_labels", "CIFAR100"),
        (0.5071, 0.4866, 0.4409),
        (0.2673, 0.2564, 0.2762),
        _HOW,
    ),
)
