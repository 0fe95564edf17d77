"""nasproxy's C++ kernels where they cannot be built: one warning, then ATen's operators, same results."""

import warnings

import pytest
import torch

from nasproxy.models import _first_block, _winograd, build_model
from nasproxy.models._cpp import CppExtension


@pytest.mark.parametrize(
    ("module", "what", "switch"),
    [
        (_winograd, "Winograd convolutions", "NASPROXY_WINOGRAD"),
        (_first_block, "fused first blocks", "NASPROXY_FUSED_BLOCK"),
    ],
)
def test_a_failed_build_warns_once_and_falls_back(monkeypatch, module, what, switch):
    def no_compiler():
        raise RuntimeError("no C++ compiler")

    unbuildable = CppExtension("unbuildable", lambda: "", [], what=what, fallback="ATen's operators")
    monkeypatch.setattr(unbuildable, "build", no_compiler)
    monkeypatch.setattr(module, "_EXTENSION", unbuildable)
    monkeypatch.delenv(switch, raising=False)
    net = build_model("convnet-w16-d2-instance-relu-avg", channels=1, num_classes=10, image_size=(28, 28))
    x = torch.randn(2, 1, 28, 28)
    with pytest.warns(UserWarning, match=f"{what} unavailable.*no C\\+\\+ compiler"):
        y = net(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net(x)  # no second warning
    monkeypatch.setenv(switch, "0")
    torch.testing.assert_close(y, net(x))
