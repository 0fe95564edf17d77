"""SVHN (Netzer et al. 2011), cropped digits, from ``train_32x32.mat`` and ``test_32x32.mat``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nasproxy._errors import DataNotFoundError, setting
from nasproxy.data._base import DATASETS, DatasetInfo, RawSplits, not_found_message


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
        how = f"put {' and '.join(names)} there, or pass {setting('download')} on a machine with internet"
        raise DataNotFoundError(not_found_message("SVHN", roots, ["svhn"], [], how))
    out = []
    for n in names:
        mat = loadmat(d / n)
        x = torch.from_numpy(np.ascontiguousarray(mat["X"].transpose(3, 2, 0, 1)))
        y = torch.from_numpy(mat["y"].astype(np.int64).flatten() % 10)  # SVHN stores digit 0 as label 10
        out += [x, y]
    return RawSplits(*out)


DATASETS.register(
    "svhn",
    DatasetInfo("svhn", _svhn, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), f"see {setting('download')}"),
)
