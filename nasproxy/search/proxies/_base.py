"""What a proxy is: a way to score one architecture of a space, so that a search can rank them."""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from nasproxy._artifact import CondensedSet
from nasproxy._registry import Registry
from nasproxy.data import Dataset
from nasproxy.engine import TrainConfig
from nasproxy.spaces import Candidate, SearchSpace


@dataclass(frozen=True)
class Protocol:
    """Everything that determines a trial's score. Its hash names the study, so changing any of it starts
    a new study instead of mixing incomparable numbers."""

    proxy: str  # a name in PROXIES
    dataset: str
    holdout: int
    split_seed: int
    val_fingerprint: str
    proxy_file: str | None = None  # content hash of the proxy's file (a condensed set), for file-based proxies
    proxy_images: int = 0  # images in the condensed set (sets the early-stopping budget)
    epochs: int = 100
    repeats: int = 5
    batch_size: int = 256
    lr: float = 0.01
    precision: str = "fp32"
    seed: int = 0
    zero_cost_batch: int = 64
    # also score every trained network on the test set: the ground truth (full) needs it; ranking by a proxy
    # needs only the validation images (the paper's protocol), and the test set is twice their size
    score_test: bool = False
    # training images augmented on their own (a DSA strategy; nasproxy.augment): DSA proxies train so
    augment: str | None = None
    # a plugin proxy's class, version and source hash (nasproxy.search.proxies._plugins): a changed plugin is
    # a new protocol
    plugin: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """What names the study (its hash) and is stored with it. Fields added later are left out while they
        hold their neutral value, so that studies made before them keep their names."""
        fields = dataclasses.asdict(self)
        for late in ("augment", "plugin"):
            if fields[late] is None:
                del fields[late]
        return fields

    def train_config(self, **overrides) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            precision=self.precision,
            augment=self.augment,
            **overrides,
        )


@dataclass(frozen=True)
class Runtime:
    """Where and how a candidate is scored: the device and the resolved backend (nasproxy.backends). Neither
    changes what is computed beyond float rounding, so neither is part of the protocol; trials record both.
    ``checkpoint``: a file where a training proxy keeps its progress, so that a killed worker's architecture
    continues where it stopped when it is scored again (None: no checkpoints)."""

    device: torch.device
    backend: str = "aten"
    checkpoint: Path | None = None


@dataclass
class Score:
    value: float  # what the search ranks by (validation accuracy, or the training-free score)
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Work:
    """What scoring one architecture costs, per network: SGD steps, images through training (forward and
    backward) and images scored (forward only). The search's estimate multiplies them by measured rates."""

    steps: int = 0
    train_images: int = 0
    scored_images: int = 0


class Proxy(ABC):
    """A way to score an architecture. Subclasses set the class attributes and implement :meth:`score`;
    registering an instance in ``PROXIES`` makes it a ``--proxy`` name."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    file: ClassVar[str] = "none"  # its condensed set: "required", "optional" or "none"
    default_epochs: ClassVar[int] = 100  # 0: training-free
    default_repeats: ClassVar[int] = 5
    scores_test: ClassVar[bool] = False  # the default of Protocol.score_test
    minibatch: ClassVar[int] = 64  # Protocol.zero_cost_batch: real images a training-free score looks at

    @abstractmethod
    def score(
        self,
        space: SearchSpace,
        cand: Candidate,
        dataset: Dataset,
        protocol: Protocol,
        condensed: CondensedSet | None,
        runtime: Runtime,
    ) -> Score: ...

    def work(self, protocol: Protocol, dataset: Dataset) -> Work:
        """Per-network cost of one architecture's score (training-free proxies: nothing worth pricing)."""
        return Work()


def epochs_work(epochs: int, images: int, batch_size: int, scored: int) -> Work:
    """The cost of ``epochs`` passes over ``images`` in batches of ``batch_size``, then scoring ``scored``."""
    steps = epochs * math.ceil(images / max(1, min(batch_size, images)))
    return Work(steps=steps, train_images=epochs * images, scored_images=scored)


PROXIES: Registry[Proxy] = Registry("proxy")


def register_proxy(cls: type[Proxy]) -> type[Proxy]:
    """Class decorator: register an instance of ``cls`` under ``cls.name``."""
    PROXIES.register(cls.name, cls())
    return cls
