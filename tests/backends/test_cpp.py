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
from tests._helpers import needs_compiler

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


def test_starting_a_command_leaves_the_compiler_unimported():
    """torch._dynamo costs a process about as much to import as torch itself. Training (torch.optim), the C++
    kernels, meta-tensor probes and torch.compile load it when they first run, but importing every package
    and the process set-up every command makes leave it out, so that a command that runs no network
    (`condense --method random`) never loads it (a fresh process, so that nothing imported by other tests
    counts)."""
    import subprocess
    import sys

    code = """
import sys
import nasproxy, nasproxy.cli, nasproxy.condensers, nasproxy.evaluate, nasproxy.search, nasproxy.report
import nasproxy.backends.cpu
from nasproxy.engine import configure_process
configure_process()
assert "torch._dynamo" not in sys.modules, "torch._dynamo was imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True)


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
