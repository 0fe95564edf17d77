"""Where a loop's time goes: wall seconds per named part, for profiling (``benchmarks dc-profile``)."""

from __future__ import annotations

import contextlib
import time
from collections import Counter, defaultdict
from collections.abc import Iterator

import torch


class Sections:
    """Wall seconds per named part of a loop. Each part starts and ends with a device synchronisation, so that
    a GPU's asynchronous work is charged to the part that queued it; the syncs cost time themselves, so a
    profiled run is slower than a plain one and its parts are shares, not the plain run's seconds."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[name] += time.perf_counter() - start
            self.calls[name] += 1


def untimed(name: str) -> contextlib.AbstractContextManager[None]:
    """What a loop uses in place of :class:`Sections` when nobody profiles it."""
    return contextlib.nullcontext()
