"""The benchmarks' baselines must compute what nasproxy computes, or their timings compare different work."""

import pytest
import torch

from benchmarks.baseline import authors_convnet
from nasproxy.models import build_model


@pytest.mark.parametrize(
    "arch",
    [
        "convnet",
        "convnet-w16-d2-layer-leakyrelu-max",
        "convnet-w16-d3-batch-sigmoid-none",
        "convnet-w8-d1-group-relu-avg",
    ],
)
def test_authors_convnet_computes_nasproxys_convnet(arch):
    ours = build_model(arch, channels=1, num_classes=10, image_size=(28, 28))
    state = {k.replace("classifier_", "classifier."): v for k, v in ours.state_dict().items()}
    theirs = authors_convnet(arch, channels=1, num_classes=10, image_size=(28, 28))
    theirs.load_state_dict(state)
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(theirs(x), ours(x), rtol=1e-4, atol=1e-5)
