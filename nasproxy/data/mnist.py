"""MNIST (LeCun et al. 1998), from its IDX files."""

from nasproxy._errors import setting
from nasproxy.data._base import DATASETS, DatasetInfo
from nasproxy.data._formats import idx_loader

_HOW = f"put the MNIST IDX files under <{setting('data_root')}>/MNIST/raw or pass {setting('download')}"
DATASETS.register("mnist", DatasetInfo("mnist", idx_loader("MNIST", [], _HOW), (0.1307,), (0.3081,), _HOW))
