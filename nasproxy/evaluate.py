"""Train fresh networks from scratch on a proxy and test them on the real test set (paper, section 4)."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from nasproxy._artifact import Proxy
from nasproxy._errors import IncompatibleError
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
            f"model {model!r} cannot take images of shape {[c, h, w]} ({first_line}); pick another --model"
        ) from None
    if out.shape[-1] != num_classes:
        raise IncompatibleError(f"model {model!r} gives {out.shape[-1]} outputs for {num_classes} classes")
    return builder


def evaluate_proxy(
    proxy: Proxy,
    dataset: Dataset,
    *,
    model: str = "convnet",
    num_models: int = 20,
    config: TrainConfig = TrainConfig(),
    seed: int = 0,
    device: torch.device = torch.device("cpu"),
    progress: bool = False,
) -> EvalResult:
    """Train ``num_models`` networks (seeds ``seed .. seed+num_models-1``) on the proxy; test accuracy of each."""
    proxy.check_compatible(dataset)
    builder = checked_builder(model, proxy.images, dataset.num_classes)
    seeds = [seed + i for i in range(num_models)]
    config = dataclasses.replace(config, backend=resolve_backend(config.backend, device))
    images, labels = proxy.images.to(device), proxy.labels.to(device)
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


def _bar(enabled: bool, total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="ep", dynamic_ncols=True)
