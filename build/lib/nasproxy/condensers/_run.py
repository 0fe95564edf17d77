"""Run a registered condenser on a dataset and wrap the result in a proxy artifact with full provenance."""

from __future__ import annotations

import dataclasses
import datetime
import time
from pathlib import Path
from typing import Any

import torch

from nasproxy import __version__
from nasproxy._artifact import Proxy
from nasproxy._errors import NasproxyError
from nasproxy.condensers._base import CONDENSERS, RunContext
from nasproxy.data import Dataset
from nasproxy.engine import device_name


def condense(
    dataset: Dataset,
    *,
    method: str = "dc",
    ipc: int = 10,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    device: torch.device = torch.device("cpu"),
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = False,
) -> Proxy:
    """Condense ``dataset`` to ``ipc`` images per class with ``method``; returns the proxy (not saved)."""
    if ipc < 1:
        raise NasproxyError(f"--ipc must be at least 1 image per class, got {ipc}")
    condenser = CONDENSERS.get(method).from_options(options or {})
    start = time.perf_counter()
    context = RunContext(device=device, checkpoint=checkpoint, resume=resume, progress=progress)
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
    return Proxy(images=result.images, labels=result.labels, meta=meta)
