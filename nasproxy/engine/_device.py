"""Devices, precision and the process-wide settings the engine's speed and determinism rely on."""

from __future__ import annotations

import contextlib
import ctypes

import torch

from nasproxy._errors import NasproxyError, setting
from nasproxy._machine import cpu_model


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise NasproxyError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NasproxyError(
            f"device cuda was asked for but no CUDA GPU is visible; use {setting('device')} cpu or auto"
        )
    return dev


def device_name(device: torch.device) -> str:
    """What artifacts record as the device a result was computed on."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"


def autocast(precision: str, device: torch.device, *, cache: bool = True):
    """bf16 autocast or nothing; ``cache=False`` where the step is captured into a CUDA graph, as PyTorch asks
    of autocast around captured work (``torch.cuda.make_graphed_callables``)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()


def configure_process(*, allocator: bool = True, denormals: bool = True, deterministic: bool = True) -> None:
    """Process-wide settings that make nasproxy fast and reproducible. The CLI and every search worker call
    this once at start; a Python program that trains many networks should too (it changes the whole process,
    so the library never does it on its own):

    - ``allocator``: glibc serves large tensors from a heap it keeps instead of fresh ``mmap``s
      (:func:`tune_allocator`);
    - ``denormals``: every CPU thread treats denormal floats as zero (:func:`flush_denormals`);
    - ``deterministic``: cuDNN uses only deterministic algorithms, so that a seed gives the same networks on
      every run (some of its default weight-gradient algorithms add in a varying order);
    - torch.compile may keep one compiled graph per network of a long search (``accel.allow_compile_cache_reset``).
    """
    from nasproxy.engine._accel import allow_compile_cache_reset

    if allocator:
        tune_allocator()
    if denormals:
        flush_denormals()
    if deterministic:
        torch.backends.cudnn.deterministic = True
    allow_compile_cache_reset()


_ALLOCATOR_TUNED = False


def tune_allocator() -> bool:
    """Ask glibc to serve large tensors from a heap it keeps, instead of fresh ``mmap``s.

    Without it every activation larger than ~32 MB is a new mapping whose pages fault in one by one, which
    on a 2-core CPU costs as much as the convolutions (results/bench/engine-choices.md).
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    _ALLOCATOR_TUNED = bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    return _ALLOCATOR_TUNED


_DENORMALS_FLUSHED = False


def flush_denormals() -> bool:
    """Make every intra-op CPU thread treat denormal floats as zero (x86's FTZ and DAZ flags).

    A network that fits its 100 training images drives gradients into the denormal range, where each
    operation falls into microcode (2x on small networks, results/bench/engine-choices.md). The flags
    live in each thread's control register and ``torch.set_flush_denormal`` sets only the calling thread's,
    so OpenMP's workers (which threads started later inherit) are visited with an empty parallel region.
    """
    global _DENORMALS_FLUSHED
    if _DENORMALS_FLUSHED:
        return True
    if not torch.set_flush_denormal(True):  # not an x86 or ARM CPU with these flags
        return False
    _DENORMALS_FLUSHED = True
    gomp = _loaded_libgomp()
    if gomp is not None:
        region = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: torch.set_flush_denormal(True))
        gomp.GOMP_parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        gomp.GOMP_parallel(ctypes.cast(region, ctypes.c_void_p), None, torch.get_num_threads(), 0)
    return True


def _loaded_libgomp() -> ctypes.CDLL | None:
    """The OpenMP runtime torch runs its parallel regions on, if it is GNU's and already loaded."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libgomp" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None
