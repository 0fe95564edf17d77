"""Fashion-MNIST (Xiao et al. 2017): found offline in Debian's ``dataset-fashion-mnist`` package."""

from pathlib import Path

from nasproxy._errors import setting
from nasproxy.data._base import DATASETS, DatasetInfo
from nasproxy.data._formats import idx_loader

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_HOW = (
    f"install it with `apt-get install dataset-fashion-mnist`, put the IDX files in {setting('data_root')}, "
    f"or pass {setting('download')}"
)
DATASETS.register(
    "fashion-mnist",
    DatasetInfo("fashion-mnist", idx_loader("FashionMNIST", [DEBIAN_FASHION_MNIST], _HOW), (0.2861,), (0.3530,), _HOW),
)
