"""Backends: how a built network's operations run. Networks are built from standard layers; the engine
applies one backend to each network it trains or scores (``TrainConfig.backend``, ``--backend``):

- ``aten``: PyTorch's own operators, on any device;
- ``cpu-kernels``: on CPUs, nasproxy's C++ kernels and faster pooling swapped into ConvNets
  (:mod:`nasproxy.backends.cpu`), measured in results/README.md and results/bench/engine-choices.md;
- ``auto`` (default): ``cpu-kernels`` on CPUs where they build, else ``aten``.

Backends compute the same function to float rounding, so a backend is recorded with every result (the
resolved name, :func:`resolve_backend`) but is not part of a study's protocol.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import torch
from torch import nn

from nasproxy._errors import NasproxyError

BACKENDS = ("auto", "aten", "cpu-kernels")


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise NasproxyError(f"backend {name!r} is not one of {', '.join(BACKENDS)}")
    return name


def resolve_backend(name: str, device: torch.device) -> str:
    """The backend that ``name`` means on ``device``: ``aten`` or ``cpu-kernels``. On CPUs ``auto`` builds
    the C++ kernels if need be (minutes, once per machine; :func:`build_cpu_kernels` announces it)."""
    check_backend(name)
    if device.type != "cpu":
        if name == "cpu-kernels":
            raise NasproxyError(f"backend cpu-kernels runs only on CPUs, not on {device}; use auto or aten")
        return "aten"
    if name == "aten":
        return name
    from nasproxy.backends import cpu

    if cpu.build():
        return "cpu-kernels"
    if name == "cpu-kernels":
        raise NasproxyError(
            "backend cpu-kernels: nasproxy's C++ kernels do not build here (is g++ installed?); use aten"
        )
    return "aten"


def apply_backend(module: nn.Module, backend: str) -> nn.Module:
    """``module`` made to run on ``backend`` (a resolved name), in place; returns it."""
    if backend == "cpu-kernels":
        from nasproxy.backends import cpu

        cpu.apply(module)
    elif backend != "aten":
        raise NasproxyError(f"apply_backend needs a resolved backend (aten or cpu-kernels), got {backend!r}")
    return module


def prepare_compile() -> None:
    """What the backends tell torch.compile before it traces a network (the engine calls it at every compile).
    Only a loaded CPU backend has anything to tell: a network runs its kernels only after ``apply_backend``
    imported it, and a CUDA run never imports it."""
    cpu = sys.modules.get("nasproxy.backends.cpu")
    if cpu is not None:
        cpu.mark_compile_constants()


def build_cpu_kernels(*, announce: Callable[[str], None] | None = None, after: float = 2.0) -> bool:
    """Build the CPU backend's C++ kernels now (or load them from the disk cache) instead of inside the first
    training step, where a build would stall a progress bar for minutes. ``announce`` is told when that takes
    longer than ``after`` seconds, i.e. when it really builds (once per machine). True if they work."""
    from nasproxy.backends import cpu

    timer = None
    if announce is not None:
        message = "building nasproxy's C++ kernels for this CPU (once per machine, 1-3 minutes) ..."
        timer = threading.Timer(after, announce, [message])
        timer.daemon = True
        timer.start()
    try:
        return cpu.build()
    finally:
        if timer is not None:
            timer.cancel()


__all__ = ["BACKENDS", "apply_backend", "build_cpu_kernels", "check_backend", "resolve_backend"]
