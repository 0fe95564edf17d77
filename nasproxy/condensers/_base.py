"""What every condenser (or coreset selector) provides, and the registry they live in."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from nasproxy._errors import NasproxyError, setting
from nasproxy._registry import Registry
from nasproxy._sections import Sections
from nasproxy.data import Dataset


@dataclass(frozen=True)
class CondenseResult:
    images: torch.Tensor
    labels: torch.Tensor
    iterations_done: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # method-specific provenance (loss history, ...)


@dataclass(frozen=True)
class RunContext:
    """Where and how a condenser runs; nothing here changes what it computes except ``device``."""

    device: torch.device
    checkpoint: Path | None = None  # where long runs save their state; None: never
    resume: bool = False  # continue from ``checkpoint`` if it exists
    progress: bool = True
    on_iteration: Callable[[int, float], None] | None = None  # (iteration, loss) hook, for tests and UIs
    hours: float | None = None  # wall-time budget of an iterative run (it stops after a checkpoint)
    deadline: float | None = None  # ``time.monotonic()`` at which ``hours`` run out
    sections: Sections | None = None  # times the parts of each iteration (profiling; it adds device syncs)


class Condenser(ABC):
    """A method that turns a dataset into ``ipc`` images per class. Subclasses set ``Config``."""

    name: ClassVar[str]
    Config: ClassVar[type]  # a frozen dataclass of the method's hyper-parameters

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.Config()

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Condenser:
        """Build from user options; ``None`` values mean "the default"; unknown names are an error."""
        known = {f.name for f in dataclasses.fields(cls.Config)}
        given = {k: v for k, v in options.items() if v is not None}
        unknown = sorted(set(given) - known)
        if unknown:
            raise NasproxyError(
                f"method {cls.name!r} does not take {', '.join(unknown)}; "
                f"it takes {', '.join(sorted(known)) or 'no options'}"
            )
        return cls(cls.Config(**given))

    @abstractmethod
    def condense(self, dataset: Dataset, *, ipc: int, seed: int, context: RunContext) -> CondenseResult: ...


CONDENSERS: Registry[type[Condenser]] = Registry("condenser")


def register_condenser(cls: type[Condenser]) -> type[Condenser]:
    CONDENSERS.register(cls.name, cls)
    return cls


def real_images_per_class(dataset: Dataset, ipc: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``ipc`` distinct random training images of every class, class-major order."""
    xs, ys = [], []
    for c, idx in enumerate(dataset.class_indices()):
        if len(idx) < ipc:
            raise NasproxyError(f"class {c} has only {len(idx)} training images, fewer than {setting('ipc')} {ipc}")
        pick = idx[torch.randperm(len(idx), generator=generator)[:ipc]]
        xs.append(dataset.train_images[pick])
        ys.append(torch.full((ipc,), c, dtype=torch.long))
    return torch.cat(xs), torch.cat(ys)
