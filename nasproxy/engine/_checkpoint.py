"""Resumable training: :func:`nasproxy.engine.fit` saves its progress to a file at epoch ends, and a later
``fit`` given the same file continues from the last save, with the result of an uninterrupted run on the same
device and backend. A long job (a ground-truth network, the selection methods' network) killed part-way
then loses at most one epoch plus ``interval`` seconds, not everything."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasproxy._artifact import atomic_torch_save
from nasproxy._configs import TrainConfig

FORMAT = 1


@dataclass(frozen=True)
class Checkpoint:
    """Where ``fit`` keeps its progress. ``interval``: the least seconds between two saves (a save writes every
    network's weights and optimizer state; an epoch on a condensed set can take milliseconds). ``state`` and
    ``restore``: what the caller keeps beside the networks (hook results, counters), saved with them and handed
    back on resume. The file outlives ``fit``: the caller :meth:`discard` s it once its own result is safe, so that a
    run killed after training but before recording resumes with nothing left to train."""

    path: Path
    interval: float = 60.0
    state: Callable[[], dict[str, Any]] | None = None
    restore: Callable[[dict[str, Any]], None] | None = None

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # never written (an unwritable folder): nothing to remove
            Path(self.path).unlink()


def fingerprint(modules: Sequence[nn.Module], images: torch.Tensor, labels: torch.Tensor, config: TrainConfig) -> str:
    """What must match for a saved run to be continued: the settings, the data's size and labels, the
    networks' parameter shapes and the device type (a run resumed on another device would mix two)."""
    identity = {
        "format": FORMAT,
        "config": dataclasses.asdict(config),
        "images": list(images.shape),
        "labels": hashlib.sha256(labels.cpu().numpy().tobytes()).hexdigest(),
        "shapes": [[list(p.shape) for p in m.state_dict().values()] for m in modules],
        "device": images.device.type,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


class Progress:
    """One ``fit`` call's view of its checkpoint: what it resumes from, and when to save next. Without a
    checkpoint it does nothing and costs nothing."""

    def __init__(self, checkpoint: Checkpoint | None, identity: Callable[[], str], device: torch.device) -> None:
        self.checkpoint = checkpoint
        self.saved: dict[str, Any] | None = None
        self.finished: dict[int, dict[str, torch.Tensor]] = {}  # module index -> trained weights
        self.last_save = time.monotonic()
        if checkpoint is None:
            return
        self.fingerprint = identity()
        if not Path(checkpoint.path).exists():
            return
        try:
            saved = torch.load(checkpoint.path, map_location=device, weights_only=True)
        except Exception as exc:  # a file from another version or a damaged one: train from scratch
            warnings.warn(f"ignoring the unreadable training checkpoint {checkpoint.path} ({exc})", stacklevel=3)
            return
        if saved.get("fingerprint") != self.fingerprint:
            warnings.warn(f"ignoring the training checkpoint {checkpoint.path}: it is of another run", stacklevel=3)
            return
        self.saved = saved
        self.finished = dict(saved["finished"])
        if checkpoint.restore is not None:
            checkpoint.restore(saved["caller"])

    @property
    def resumed(self) -> bool:
        return self.saved is not None

    def group(self, index: int) -> dict[str, Any] | None:
        """The saved state of the group of networks at ``index`` if it was part-way through training."""
        if self.saved is not None and self.saved["group"] == index:
            return self.saved
        return None

    def done_before(self, index: int) -> bool:
        """Whether the group at ``index`` had finished training when the checkpoint was saved."""
        return self.saved is not None and index < self.saved["group"]

    def group_finished(self, group_index: int, modules: dict[int, nn.Module]) -> None:
        if self.checkpoint is None:
            return
        for i, m in modules.items():  # kept for every later save, due now or not
            self.finished[i] = {k: v.detach().clone() for k, v in m.state_dict().items()}
        if self._due():
            self._save({"group": group_index + 1, "epoch": 0, "step": 0})

    def epoch_done(
        self,
        group_index: int,
        epoch: int,
        step: int,
        module: nn.Module,
        opt: torch.optim.Optimizer,
        generators: Sequence[torch.Generator],
    ) -> None:
        if not self._due():
            return
        self._save(
            {
                "group": group_index,
                "epoch": epoch,
                "step": step,
                "module": module.state_dict(),
                "optimizer": opt.state_dict(),
                "generators": [g.get_state() for g in generators],
            }
        )

    def _due(self) -> bool:
        return self.checkpoint is not None and time.monotonic() - self.last_save >= self.checkpoint.interval

    def _save(self, where: dict[str, Any]) -> None:
        caller = self.checkpoint.state() if self.checkpoint.state is not None else {}
        try:
            atomic_torch_save(
                {"fingerprint": self.fingerprint, "finished": self.finished, "caller": caller, **where},
                Path(self.checkpoint.path),
            )
        except OSError as exc:  # a full disk or a read-only cache costs the resumability, not the training
            message = f"training goes on without checkpoints: cannot write {self.checkpoint.path} ({exc})"
            warnings.warn(message, stacklevel=4)
            self.checkpoint = None
            return
        self.last_save = time.monotonic()
