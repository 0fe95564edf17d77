"""Building the CPU backend's kernels: they build wherever a compiler exists; where they cannot be built,
``auto`` falls back to ATen's operators after one warning per kernel, and ``cpu-kernels`` is a clear error."""

import warnings

import pytest
import torch

from nasproxy import NasproxyError
from nasproxy.backends import apply_backend, resolve_backend
from nasproxy.backends import cpu as cpu_backend
from nasproxy.backends.cpu import _cpp, _first_block, _winograd
from nasproxy.models import build_model
from tests._helpers import HAS_COMPILER, needs_compiler

CPU = torch.device("cpu")


@needs_compiler
def test_the_kernels_build_where_a_compiler_exists():
    assert cpu_backend.build()
    assert resolve_backend("auto", CPU) == "cpu-kernels"
    assert resolve_backend("cpu-kernels", CPU) == "cpu-kernels"


def test_aten_and_cuda_never_touch_the_kernels(monkeypatch):
    def no_build():
        raise AssertionError("the kernels were built")

    for module in (_first_block, _winograd):
        ext = _cpp.CppExtension(f"probe_{module.__name__[-5:]}", lambda: "", [], what="x", fallback="y")
        monkeypatch.setattr(ext, "build", no_build)
        monkeypatch.setattr(module, "_EXTENSION", ext)
    assert resolve_backend("aten", CPU) == "aten"
    assert resolve_backend("auto", torch.device("cuda")) == "aten"
    with pytest.raises(NasproxyError, match="cpu-kernels runs only on CPUs"):
        resolve_backend("cpu-kernels", torch.device("cuda"))


@pytest.mark.parametrize(
    ("module", "what"), [(_winograd, "Winograd convolutions"), (_first_block, "fused first blocks")]
)
def test_a_failed_build_warns_once_and_auto_falls_back_to_aten(monkeypatch, module, what):
    def no_compiler():
        raise RuntimeError("no C++ compiler")

    unbuildable = _cpp.CppExtension("unbuildable", lambda: "", [], what=what, fallback="ATen's operators")
    monkeypatch.setattr(unbuildable, "build", no_compiler)
    monkeypatch.setattr(module, "_EXTENSION", unbuildable)
    with pytest.warns(UserWarning, match=f"{what} unavailable.*no C\\+\\+ compiler"):
        assert resolve_backend("auto", CPU) == "aten"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_backend("auto", CPU) == "aten"  # no second warning
        with pytest.raises(NasproxyError, match="do not build here.*use aten"):
            resolve_backend("cpu-kernels", CPU)
    net = build_model("convnet-w16-d2-instance-relu-avg", channels=1, num_classes=10, image_size=(28, 28))
    x = torch.randn(2, 1, 28, 28)
    want = net(x)
    torch.testing.assert_close(apply_backend(net, "aten")(x), want, rtol=0, atol=0)


def test_a_bad_backend_name_is_named():
    from nasproxy import TrainConfig

    with pytest.raises(NasproxyError, match="backend 'fast' is not one of auto, aten, cpu-kernels"):
        TrainConfig(backend="fast")
    with pytest.raises(NasproxyError, match="resolved backend"):
        apply_backend(torch.nn.Linear(2, 2), "auto")


def test_a_cuda_run_imports_nothing_of_the_cpu_backend():
    """On CUDA the backend resolves to aten without touching the CPU kernels' modules (a fresh process, so
    that nothing imported by other tests counts)."""
    import subprocess
    import sys

    code = """
import sys, torch
import nasproxy.cli, nasproxy.condensers, nasproxy.evaluate, nasproxy.search, nasproxy.report
from nasproxy.backends import apply_backend, resolve_backend
from nasproxy.engine import TrainConfig
from nasproxy.models import build_model
backend = resolve_backend(TrainConfig().backend, torch.device("cuda"))
net = apply_backend(build_model("convnet", channels=1, num_classes=10, image_size=(28, 28)), backend)
assert backend == "aten", backend
loaded = sorted(m for m in sys.modules if m.startswith("nasproxy.backends.cpu"))
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_commands_and_training_leave_the_compiler_unimported(tmp_path):
    """torch._dynamo takes more than half as long to import as torch itself, and only meta-tensor probes
    (the search command's check of its space) and torch.compile need it. Importing every package, the process
    set-up every command makes, and training (the optimizer, the C++ kernels, a resumable checkpoint, DC's
    second-order gradients through the Winograd convolution) leave it out, so that search workers,
    ``condense`` and ``evaluate`` start without it (a fresh process: nothing other tests imported counts)."""
    import subprocess
    import sys

    code = f"""
import sys
import torch
import nasproxy, nasproxy.cli, nasproxy.condensers, nasproxy.evaluate, nasproxy.search, nasproxy.report
import nasproxy.backends.cpu
from nasproxy.backends.cpu import _winograd
from nasproxy.engine import Checkpoint, TrainConfig, configure_process, train_from_scratch
from nasproxy.models import build_model
configure_process()
assert "torch._dynamo" not in sys.modules, "importing and set-up imported torch._dynamo"
build = lambda: build_model("convnet-w16-d2-none-relu-none", channels=1, num_classes=10, image_size=(28, 28))
images, labels = torch.randn(20, 1, 28, 28), torch.arange(20) % 10
config = TrainConfig(epochs=2, batch_size=10, backend="auto")
checkpoint = Checkpoint({str(tmp_path / "run.pt")!r}, interval=0.0)
(net,) = train_from_scratch(build, images, labels, config, seeds=[0], checkpoint=checkpoint)
conv = net.features[1][0]
x = torch.randn(2, 16, 16, 16, requires_grad=True)
(grad,) = torch.autograd.grad(conv(x).square().sum(), conv.weight, create_graph=True)
grad.square().sum().backward()
assert "torch._dynamo" not in sys.modules, "training imported torch._dynamo"
print("winograd" if _winograd.applies(x, conv) else "aten")
"""
    ran = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    if HAS_COMPILER:  # the kernels ran, not ATen's fallback
        assert ran.split() == ["winograd"]


@needs_compiler
def test_a_compile_traces_the_kernels_usability_as_a_constant():
    """Whether a kernel is usable is read under a lock, which would break every compiled graph; the engine
    marks it constant when it compiles (not at import, which would cost every process the compiler)."""
    from nasproxy.engine import compiled

    net = build_model("convnet-w16-d1-none-relu-none", channels=1, num_classes=10, image_size=(28, 28))
    net = apply_backend(net, "cpu-kernels")
    compiled(net)
    explanation = torch._dynamo.explain(net)(torch.randn(2, 1, 28, 28))
    assert not [r.reason for r in explanation.break_reasons if "`lock`" in r.reason]
