"""What one training run is: its hyper-parameters, and a hook to look at networks part-way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from nasproxy._errors import NasproxyError
from nasproxy.backends import check_backend

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run. Defaults are the paper's evaluation protocol."""

    epochs: int = 300  # passes over the training images
    batch_size: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay_epochs: tuple[int, ...] | None = None  # None: once, half-way through training (paper)
    lr_decay: float = 0.1  # factor applied at each decay epoch
    max_steps: int | None = None  # stop after this many SGD steps (early-stopping baseline)
    precision: str = "fp32"  # fp32 | bf16 (autocast; weights and optimizer stay fp32)
    pack: int | None = None  # ConvNets of one spec trained as one packed module; None: auto (see training_pack)
    compile: bool | None = None  # torch.compile the network; None: auto (see use_compile)
    cuda_graph: bool | None = None  # replay each SGD step as a captured CUDA graph; None: auto (use_cuda_graph)
    backend: str = "auto"  # how the networks' operations run: auto | aten | cpu-kernels (nasproxy.backends)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise NasproxyError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        check_backend(self.backend)
        if self.epochs < 0 or self.batch_size < 1 or (self.pack is not None and self.pack < 1):
            raise NasproxyError("epochs must be >= 0, batch size and pack >= 1")

    def decay_steps(self, steps_per_epoch: int) -> set[int]:
        """SGD steps before which the learning rate is multiplied by ``lr_decay``."""
        if self.lr_decay_epochs is not None:
            return {e * steps_per_epoch for e in self.lr_decay_epochs if e > 0}
        half = self.max_steps // 2 if self.max_steps is not None else self.epochs // 2 * steps_per_epoch
        return {half} - {0}


@dataclass(frozen=True)
class EpochHook:
    """Look at the networks part-way through training (e.g. score them at half the epochs): after each epoch
    in ``epochs`` (1-based), ``fn(epoch, indices, networks)`` gets the networks of ``fit``'s ``modules`` at
    ``indices`` as trained so far. It must not change them."""

    epochs: frozenset[int]
    fn: Callable[[int, Sequence[int], Sequence[nn.Module]], None]


@dataclass
class FitStats:
    steps: int = 0
    backend: str = "aten"  # the backend the networks ran on (resolved, see nasproxy.backends)
