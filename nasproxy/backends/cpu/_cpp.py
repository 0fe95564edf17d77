"""C++ kernels compiled on first use with ``torch.utils.cpp_extension`` and cached on disk.

Each extension is built for the CPU it runs on (``-march=native``, OpenMP); its name hashes the source, the
exported functions, the compiler flags, the CPU's features and the torch version, so a changed kernel, list
or flag, another CPU or another torch rebuilds instead of loading a stale library. A failed build (no
compiler, no headers) warns once and reports None, so callers fall back to ATen's operators.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import warnings
from collections.abc import Callable

import torch

from nasproxy._machine import cpuinfo_field

# No floating-point exception flags and no errno from math functions: without them GCC vectorises neither
# std::floor nor loops that call math functions. Neither changes a computed value.
_FLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]


def _cpu_signature() -> str:
    """What ``-march=native`` compiles for: a build is reused only on a CPU with the same features."""
    return cpuinfo_field("flags") or ""


class CppExtension:
    """``get()`` is the compiled module of ``source()`` exporting ``functions``, or None where it cannot be
    built (after one warning that says ``what`` is unavailable and that ``fallback`` is used instead)."""

    def __init__(self, name: str, source: Callable[[], str], functions: list[str], *, what: str, fallback: str):
        self.name, self.source, self.functions = name, source, functions
        self.what, self.fallback = what, fallback
        self._module = None
        self._failed = False
        self._lock = threading.Lock()

    def build(self):
        # torch's extension module logs a guess of CUDA_HOME on import even on CPU-only machines: noise here
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        from torch.utils.cpp_extension import load_inline

        source = self.source()
        identity = [source, *_FLAGS, *self.functions, _cpu_signature(), torch.__version__]
        digest = hashlib.sha256("\n".join(identity).encode())
        digest = digest.hexdigest()[:12]
        return load_inline(
            name=f"nasproxy_{self.name}_{digest}",
            cpp_sources=source,
            functions=self.functions,
            extra_cflags=_FLAGS,
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )

    def get(self):
        if self._module is not None or self._failed:
            return self._module
        with self._lock:
            if self._module is None and not self._failed:
                try:
                    self._module = self.build()
                except Exception as exc:  # no compiler, no headers, no OpenMP: ATen's operators still work
                    self._failed = True
                    warnings.warn(
                        f"{self.what} unavailable ({type(exc).__name__}: {str(exc)[:200]}); using {self.fallback}",
                        stacklevel=3,
                    )
        return self._module
