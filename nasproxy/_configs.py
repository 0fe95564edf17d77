"""The settings of nasproxy's commands as frozen dataclasses: the one place their defaults live.

This module imports nothing heavy, so that the command line reads its defaults from here without importing
torch (``nasproxy --help`` stays instant); the library validates them when they are built.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasproxy._errors import NasproxyError, setting

DEFAULT_DATASET = "fashion-mnist"


@dataclass(frozen=True)
class SplitSpec:
    """How the validation hold-out is carved out of the training set."""

    holdout: int = 5000  # validation images, taken class-balanced from the training set
    seed: int = 0  # seed of the hold-out draw


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
    augment: str | None = None  # a DSA strategy: every training image augmented on its own (nasproxy.augment)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise NasproxyError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        from nasproxy.augment import parse_strategy
        from nasproxy.backends import check_backend

        check_backend(self.backend)
        if self.augment is not None:
            parse_strategy(self.augment)
        if self.epochs < 0 or self.batch_size < 1 or (self.pack is not None and self.pack < 1):
            raise NasproxyError("epochs must be >= 0, batch size and pack >= 1")

    def decay_steps(self, steps_per_epoch: int) -> set[int]:
        """SGD steps before which the learning rate is multiplied by ``lr_decay``."""
        if self.lr_decay_epochs is not None:
            return {e * steps_per_epoch for e in self.lr_decay_epochs if e > 0}
        half = self.max_steps // 2 if self.max_steps is not None else self.epochs // 2 * steps_per_epoch
        return {half} - {0}


@dataclass(frozen=True)
class CondenseSettings:
    """What ``nasproxy condense`` makes: ``ipc`` images per class with ``method``, seeded. Each method's own
    hyper-parameters are its ``Config`` (``nasproxy.condensers``)."""

    method: str = "dc"
    ipc: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.ipc < 1:
            raise NasproxyError(f"{setting('ipc')} must be at least 1 image per class, got {self.ipc}")


@dataclass(frozen=True)
class EvaluateSettings:
    """How ``nasproxy evaluate`` judges a condensed set: networks trained on it from these seeds, tested on the
    test set."""

    models: int = 20  # networks trained per condensed set and model (the paper's protocol)
    seed: int = 0  # network i is seeded with seed + i

    def __post_init__(self) -> None:
        if self.models < 1:
            raise NasproxyError(f"{setting('models')} must be at least 1, got {self.models}")


def check_hours(hours: float | None) -> None:
    """A wall-time budget is a positive number of hours (or None: no budget)."""
    if hours is not None and not hours > 0:
        raise NasproxyError(f"{setting('hours')} must be a positive number of hours, got {hours}")


@dataclass(frozen=True)
class SearchRequest:
    """Everything a worker process needs to rebuild the search on its own (it is pickled to workers)."""

    space: str
    proxy: str
    dataset: str | None = None  # None: the condensed set's, else DEFAULT_DATASET
    proxy_file: str | None = None
    holdout: int = SplitSpec.holdout
    split_seed: int = SplitSpec.seed
    data_root: str | None = None
    download: bool = False
    epochs: int | None = None  # None: the proxy's default
    repeats: int | None = None
    batch_size: int = 256
    lr: float = 0.01
    precision: str = "fp32"
    seed: int = 0
    score_test: bool | None = None  # None: the proxy's default (only full data scores the test set)
    ipc: int = 10  # early-stopping without a condensed set: the budget of one of this many images per class
    sample: int | None = None  # a seeded random sample of this many architectures
    sample_seed: int = 0
    only: tuple[str, ...] | None = None  # just these architecture ids
    sampler: str = "sweep"  # sweep (every target) | tpe (Optuna's TPE proposes, grid spaces only)
    trials: int = 50  # with --sampler tpe: distinct architectures to complete
    storage: str | None = None
    study: str | None = None
    device: str = "auto"
    # worker processes take these devices in turn (several candidates in flight on each); the first is this
    # process's; None: every worker on ``device``
    devices: tuple[str, ...] | None = None
    backend: str = "auto"  # how networks run (nasproxy.backends); recorded per trial, not part of the protocol
    augment: str = "auto"  # auto (as the condensed set says) | none | a strategy (nasproxy.augment)
    threads: int | None = None  # torch threads per worker
    # a wall-time budget: after this many hours a worker claims no new architecture (the ones in training
    # finish); a later run of the same search continues. None: until every architecture is done
    hours: float | None = None

    def __post_init__(self) -> None:
        check_hours(self.hours)
        if self.devices is not None:
            if not self.devices:
                raise NasproxyError(f"{setting('devices')} needs at least one device, e.g. cuda:0,cuda:1")
            object.__setattr__(self, "device", self.devices[0])
