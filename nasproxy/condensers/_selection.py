"""What herding, k-center and forgetting share: real training images chosen per class with the help of a
network trained once on the training split (``_features``)."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import torch

from nasproxy._errors import NasproxyError, setting
from nasproxy.backends import check_backend, resolve_backend
from nasproxy.condensers._base import Condenser, CondenseResult, RunContext
from nasproxy.condensers._features import TrainedNet, embed, trained_net
from nasproxy.data import Dataset
from nasproxy.models import model_builder


@dataclass(frozen=True)
class SelectionConfig:
    model: str = "convnet"  # the network trained on the training split (a ConvNet: its embedding is used)
    epochs: int = 20  # its training epochs (the paper's evaluation protocol otherwise)
    backend: str = "auto"  # how it runs (nasproxy.backends); not part of what is selected

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise NasproxyError(f"epochs must be at least 1, got {self.epochs}")
        check_backend(self.backend)
        model_builder(self.model)


class Selector(Condenser):
    """Selects ``ipc`` training images per class; subclasses rank a class's images in :meth:`select`."""

    Config = SelectionConfig

    @abstractmethod
    def select(
        self, trained: TrainedNet, members: torch.Tensor, dataset: Dataset, ipc: int, seed: int, device
    ) -> torch.Tensor:
        """Positions (into ``members``, a class's training-set indices) of the ``ipc`` images to keep."""

    def condense(self, dataset: Dataset, *, ipc: int, seed: int, context: RunContext) -> CondenseResult:
        cfg = self.config
        device = context.device
        for c, members in enumerate(dataset.class_indices()):
            if len(members) < ipc:
                raise NasproxyError(
                    f"class {c} has only {len(members)} training images, fewer than {setting('ipc')} {ipc}"
                )
        trained = trained_net(
            dataset,
            model=cfg.model,
            epochs=cfg.epochs,
            seed=seed,
            device=device,
            backend=resolve_backend(cfg.backend, device),
            progress=context.progress,
        )
        chosen = []
        for c, members in enumerate(dataset.class_indices()):
            picked = self.select(trained, members, dataset, ipc, seed * 1_000 + c, device)
            chosen.append(members[picked])
        index = torch.cat(chosen)
        return CondenseResult(
            images=dataset.train_images[index].clone(),
            labels=dataset.train_labels[index].clone(),
            extra={"selected": index.tolist(), "trained_net": trained.key, "trained_net_cached": trained.cached},
        )


def class_embedding(trained: TrainedNet, members: torch.Tensor, dataset: Dataset, device) -> torch.Tensor:
    return embed(trained.net, dataset.train_images[members], device)
