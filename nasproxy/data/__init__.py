"""Datasets: an offline-first registry of image-classification sets, held in memory as normalised tensors.

Every dataset comes back as a :class:`Dataset` with a fixed, seeded, class-balanced validation hold-out
carved out of the training set. Condensation only ever sees ``train``; search scores on ``val``; the
paper's accuracies are on ``test``. The split is described by :class:`SplitSpec`, which condensed sets record so
that every later step uses the same one.

A new dataset is one file here that registers a :class:`DatasetInfo` in :data:`DATASETS` (see ``svhn.py``);
``folder:PATH`` and ``tensors:FILE.pt`` name a user's own files without registering anything (``user.py``).
"""

from nasproxy._configs import SplitSpec
from nasproxy.data import cifar, fashion_mnist, mnist, svhn  # noqa: F401 - importing registers them
from nasproxy.data._base import DATASETS, Dataset, DatasetInfo, RawSplits, data_roots
from nasproxy.data._formats import read_idx
from nasproxy.data._load import dataset_key, holdout_indices, load_dataset
from nasproxy.data.fashion_mnist import DEBIAN_FASHION_MNIST

__all__ = [
    "DATASETS",
    "DEBIAN_FASHION_MNIST",
    "Dataset",
    "DatasetInfo",
    "RawSplits",
    "SplitSpec",
    "data_roots",
    "dataset_key",
    "holdout_indices",
    "load_dataset",
    "read_idx",
]
