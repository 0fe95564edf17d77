"""Run a registered condenser on a dataset and wrap the result in a condensed set with full provenance."""

from __future__ import annotations

import dataclasses
import datetime
import time
from pathlib import Path
from typing import Any

import torch

from nasproxy import __version__
from nasproxy._artifact import CondensedSet, check_writable
from nasproxy._configs import CondenseSettings, SplitSpec, check_hours
from nasproxy._errors import NasproxyError, setting
from nasproxy.condensers._base import CONDENSERS, Condenser, RunContext
from nasproxy.data import Dataset
from nasproxy.engine import device_name


def condenser_for(method: str, *, ipc: int, options: dict[str, Any] | None = None) -> Condenser:
    """The condenser ``method`` with ``options`` (None values: its defaults), after checking the settings."""
    CondenseSettings(method=method, ipc=ipc)
    return CONDENSERS.get(method).from_options(options or {})


def condense(
    dataset: Dataset,
    *,
    method: str = CondenseSettings.method,
    ipc: int = CondenseSettings.ipc,
    seed: int = CondenseSettings.seed,
    options: dict[str, Any] | None = None,
    device: torch.device = torch.device("cpu"),
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = False,
    hours: float | None = None,
) -> CondensedSet:
    """Condense ``dataset`` to ``ipc`` images per class with ``method``; returns the condensed set (not saved).

    ``hours``: a wall-time budget for the methods that iterate (dc, dsa, dm): when it runs out, the state is
    saved to ``checkpoint`` and :class:`BudgetSpent` is raised; ``resume=True`` continues from there."""
    condenser = condenser_for(method, ipc=ipc, options=options)
    check_hours(hours)
    if hours is not None and checkpoint is None:
        raise NasproxyError(f"a time budget ({setting('hours')}) needs a checkpoint to keep the work done")
    start = time.perf_counter()
    context = RunContext(
        device=device,
        checkpoint=checkpoint,
        resume=resume,
        progress=progress,
        hours=hours,
        deadline=None if hours is None else time.monotonic() + 3600 * hours,
    )
    result = condenser.condense(dataset, ipc=ipc, seed=seed, context=context)
    meta = {
        "dataset": dataset.name,
        "num_classes": dataset.num_classes,
        "image_shape": list(dataset.image_shape),
        "mean": list(dataset.mean),
        "std": list(dataset.std),
        "holdout": dataset.split.holdout,
        "split_seed": dataset.split.seed,
        "val_fingerprint": dataset.val_fingerprint,
        "method": method,
        "ipc": ipc,
        "seed": seed,
        "hyperparameters": dataclasses.asdict(condenser.config),
        "iterations_done": result.iterations_done,
        "wall_seconds": result.extra.pop("condense_seconds", time.perf_counter() - start),
        "device": device_name(device),
        "nasproxy_version": __version__,
        "torch_version": torch.__version__,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **result.extra,
    }
    return CondensedSet(images=result.images, labels=result.labels, meta=meta)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CondenseJob:
    """``nasproxy condense``: a condensed set made from a dataset, checked before any work (the output can be
    written, an earlier interrupted run is continued or discarded on purpose, the method takes its options),
    then run with checkpoints next to the output, written atomically, the checkpoint removed."""

    out: Path
    dataset: str
    method: str = CondenseSettings.method
    ipc: int = CondenseSettings.ipc
    seed: int = CondenseSettings.seed
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    split: SplitSpec = SplitSpec()
    data_root: str | None = None
    download: bool = False
    resume: bool = False  # continue an interrupted run from its checkpoint
    restart: bool = False  # discard an interrupted run's checkpoint
    force: bool = False  # overwrite an existing output
    hours: float | None = None  # wall-time budget: stop at a checkpoint when it runs out (BudgetSpent)

    def __post_init__(self) -> None:
        check_hours(self.hours)
        out = check_writable(self.out, what=setting("out"))
        object.__setattr__(self, "out", out)
        if self.checkpoint.exists() and not (self.resume or self.restart):
            raise NasproxyError(
                f"an interrupted run left {self.checkpoint}; pass {setting('resume')} to continue it or "
                f"{setting('restart')} to start over"
            )
        if out.exists() and not (self.force or self.resume):
            raise NasproxyError(
                f"{out} exists; pass {setting('force')} to overwrite it (or {setting('resume')} to extend its run)"
            )
        condenser_for(self.method, ipc=self.ipc, options=self.options)

    @property
    def checkpoint(self) -> Path:
        return Path(self.out).with_name(Path(self.out).name + ".ckpt")

    def run(self, device: torch.device, *, progress: bool = False) -> CondensedSet:
        from nasproxy.data import load_dataset

        data = load_dataset(self.dataset, data_root=self.data_root, download=self.download, split=self.split)
        if self.restart:
            self.checkpoint.unlink(missing_ok=True)
        condensed = condense(
            data,
            method=self.method,
            ipc=self.ipc,
            seed=self.seed,
            options=self.options,
            device=device,
            checkpoint=self.checkpoint,
            resume=self.resume,
            progress=progress,
            hours=self.hours,
        )
        condensed.save(self.out)
        self.checkpoint.unlink(missing_ok=True)
        return condensed
