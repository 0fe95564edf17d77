"""Train fresh networks from scratch on a condensed set and test them on the real test set (paper, section 4)."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from nasproxy._artifact import CondensedSet
from nasproxy._configs import EvaluateSettings
from nasproxy._errors import IncompatibleError, NasproxyError, setting
from nasproxy.augment import resolve as resolve_augmentation
from nasproxy.backends import resolve_backend
from nasproxy.data import Dataset
from nasproxy.engine import TrainConfig, accuracy, device_name, train_from_scratch
from nasproxy.models import model_builder


@dataclass(frozen=True)
class EvalResult:
    model: str
    accuracies: tuple[float, ...]  # test accuracy of each trained network, in [0, 1]
    seeds: tuple[int, ...]
    seconds: float
    config: TrainConfig
    device: str  # where the networks were trained and tested (see nasproxy.engine.device_name)
    backend: str = "aten"  # the resolved backend they ran on (nasproxy.backends)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        return statistics.pstdev(self.accuracies) if len(self.accuracies) > 1 else 0.0

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "mean": self.mean,
            "std": self.std,
            "accuracies": list(self.accuracies),
            "seeds": list(self.seeds),
            "seconds": self.seconds,
            "device": self.device,
            "backend": self.backend,
            "config": dataclasses.asdict(self.config),
        }


def checked_builder(model: str, images: torch.Tensor, num_classes: int) -> Callable[[], nn.Module]:
    """A zero-argument builder for ``model`` on these images; fails early, clearly, on a shape mismatch."""
    c, h, w = images.shape[1:]
    builder = partial(model_builder(model), channels=c, num_classes=num_classes, image_size=(h, w))
    try:
        probe = builder()
        with torch.no_grad():
            out = probe.eval()(images[:2].cpu())
    except (RuntimeError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise IncompatibleError(
            f"model {model!r} cannot take images of shape {[c, h, w]} ({first_line}); pick another {setting('model')}"
        ) from None
    if out.shape[-1] != num_classes:
        raise IncompatibleError(f"model {model!r} gives {out.shape[-1]} outputs for {num_classes} classes")
    return builder


def check_evaluation(config: TrainConfig) -> None:
    """An evaluation trains for at least one epoch."""
    if config.epochs < 1:
        raise NasproxyError(f"{setting('epochs')} must be at least 1 to evaluate a condensed set, got {config.epochs}")


def evaluate_condensed_set(
    condensed: CondensedSet,
    dataset: Dataset,
    *,
    model: str = "convnet",
    num_models: int = EvaluateSettings.models,
    config: TrainConfig = TrainConfig(),
    seed: int = EvaluateSettings.seed,
    device: torch.device = torch.device("cpu"),
    progress: bool = False,
    augment: str | None = "auto",
) -> EvalResult:
    """Train ``num_models`` networks (seeds ``seed .. seed+num_models-1``) on ``condensed``; test accuracy of each.
    ``augment``: ``"auto"`` augments as the condensed set says (DSA's files), ``None``/``"none"`` never, or a
    strategy (``nasproxy.augment``)."""
    EvaluateSettings(models=num_models, seed=seed)  # validates
    check_evaluation(config)
    condensed.check_compatible(dataset)
    builder = checked_builder(model, condensed.images, dataset.num_classes)
    seeds = [seed + i for i in range(num_models)]
    strategy = condensed.meta.get("augment") if augment == "auto" else resolve_augmentation(augment, dataset.name)
    config = dataclasses.replace(config, backend=resolve_backend(config.backend, device), augment=strategy)
    images, labels = condensed.images.to(device), condensed.labels.to(device)
    start = time.perf_counter()
    with _bar(progress, num_models * config.epochs, f"evaluate {model}") as bar:
        nets = train_from_scratch(builder, images, labels, config, seeds=seeds, progress=bar.update)
    accs = accuracy(
        nets,
        dataset.test_images.to(device),
        dataset.test_labels.to(device),
        precision=config.precision,
        compile=config.compile,
        backend=config.backend,
    )
    seconds = time.perf_counter() - start
    return EvalResult(model, tuple(accs), tuple(seeds), seconds, config, device_name(device), config.backend)


evaluate_proxy = evaluate_condensed_set  # its earlier name, kept so that existing scripts run


def evaluate_files(
    paths: list[str | Path],
    *,
    models: tuple[str, ...] = ("convnet",),
    num_models: int = EvaluateSettings.models,
    config: TrainConfig = TrainConfig(),
    seed: int = EvaluateSettings.seed,
    augment: str | None = "auto",
    data_root: str | None = None,
    download: bool = False,
    device: torch.device = torch.device("cpu"),
    progress: bool = False,
    csv: str | Path | None = None,
) -> Iterator[tuple[EvalResult, dict]]:
    """``nasproxy evaluate``: each condensed set against its own dataset and hold-out, for each model; yields
    the result and its row (provenance of the file and of the evaluation), appended to ``csv`` if given.
    The settings, the files and the CSV's folder are checked now, before any work; the work happens as the
    returned iterator is consumed."""
    from nasproxy._artifact import check_writable

    EvaluateSettings(models=num_models, seed=seed)
    check_evaluation(config)
    if csv:
        csv = check_writable(csv, what=setting("csv"))
    condensed_sets = [(Path(p), CondensedSet.load(p)) for p in paths]
    return _evaluate(
        condensed_sets, models, num_models, config, seed, augment, data_root, download, device, progress, csv
    )


def _evaluate(condensed_sets, models, num_models, config, seed, augment, data_root, download, device, progress, csv):
    from nasproxy.data import load_dataset

    datasets = {}
    for path, condensed in condensed_sets:
        meta = condensed.meta
        key = (meta.get("dataset"), meta.get("holdout"), meta.get("split_seed"))
        if key not in datasets:
            split = condensed.split_spec()
            datasets[key] = load_dataset(meta["dataset"], data_root=data_root, download=download, split=split)
        for model in models:
            result = evaluate_condensed_set(
                condensed,
                datasets[key],
                model=model,
                num_models=num_models,
                config=config,
                seed=seed,
                device=device,
                progress=progress,
                augment=augment,
            )
            row = {
                "proxy": str(path),
                "dataset": meta.get("dataset"),
                "method": meta.get("method"),
                "ipc": meta.get("ipc"),
                "iterations": meta.get("iterations_done"),
                "condense_seconds": meta.get("wall_seconds"),
                "condense_device": meta.get("device"),
                "augment": result.config.augment,
                **result.as_dict(),
            }
            if csv:
                append_csv_row(csv, row)
            yield result, row


def append_csv_row(path: Path, row: dict) -> None:
    """Add ``row`` to the CSV at ``path`` (columns merged with the existing ones), atomically."""
    import json

    import pandas as pd

    from nasproxy._artifact import atomic_write_text

    flat = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in row.items()}
    frame = pd.DataFrame([flat])
    if path.exists():
        frame = pd.concat([pd.read_csv(path), frame], ignore_index=True)
    atomic_write_text(path, frame.to_csv(index=False))


def _bar(enabled: bool, total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="ep", dynamic_ncols=True)
