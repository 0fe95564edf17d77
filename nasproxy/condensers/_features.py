"""A network trained once on the training split, for the selection methods: its embedding (herding,
k-center) and its forgetting events (forgetting), both recorded in one training run and cached on disk.

The network is trained through the shared engine at the paper's evaluation protocol (SGD, lr 0.01 divided by
10 half-way, momentum 0.9, weight decay 5e-4, batches of 256) on the training split only: never on the
validation hold-out or the test set. The cache key is everything that determines the result (dataset, its
split, model, epochs, seed); the cache folder is ``$NASPROXY_CACHE`` or ``~/.cache/nasproxy`` (``nasproxy._cache``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from nasproxy._artifact import atomic_torch_save
from nasproxy._cache import cache_dir
from nasproxy.backends import apply_backend, resolve_backend
from nasproxy.data import Dataset
from nasproxy.engine import Checkpoint, TrainConfig, train_from_scratch
from nasproxy.models import model_builder

EMBED_BATCH = 512


@dataclass(frozen=True)
class TrainedNet:
    """A network trained on the training split, with per-image forgetting statistics of its training."""

    net: nn.Module
    forgetting: torch.Tensor  # [N] forgetting events per training image (never learned: epochs + 1)
    learned: torch.Tensor  # [N] bool: classified correctly at some presentation
    key: str  # the cache key: recorded in the condensed set's provenance
    cached: bool  # loaded from the cache rather than trained now


def _key(dataset: Dataset, model: str, epochs: int, seed: int) -> str:
    identity = {
        "dataset": dataset.name,
        "train_images": len(dataset.train_images),
        "holdout": dataset.split.holdout,
        "split_seed": dataset.split.seed,
        "val": dataset.val_fingerprint,
        "model": model,
        "epochs": epochs,
        "seed": seed,
        "protocol": "sgd-0.01-half-decay-m0.9-wd5e-4-b256",
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return f"{dataset.name}-{model}-e{epochs}-s{seed}-{digest}"


def trained_net(
    dataset: Dataset,
    *,
    model: str,
    epochs: int,
    seed: int,
    device: torch.device,
    backend: str = "auto",
    progress: bool = False,
) -> TrainedNet:
    """The network ``model`` trained for ``epochs`` on ``dataset``'s training split (seeded), and how often
    each training image was forgotten: a forgetting event is a presentation (the image's turn in an SGD
    step) where it is misclassified after being classified correctly at its previous one (Toneva et al.
    2019). Loaded from the cache when this exact run was made before; a run killed part-way continues from
    its last checkpoint (saved at epoch ends, at most once a minute) with the same result."""
    key = _key(dataset, model, epochs, seed)
    path = cache_dir() / "trained-nets" / f"{key}.pt"
    c, h, w = dataset.image_shape
    builder = partial(model_builder(model), channels=c, num_classes=dataset.num_classes, image_size=(h, w))
    if path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = builder().to(device)
        net.load_state_dict(state["state_dict"])
        # on the backend a fresh run uses, so that the embedding (and the selection) is the same either way
        net = apply_backend(net, resolve_backend(backend, device))
        return TrainedNet(net.eval(), state["forgetting"], state["learned"], key, cached=True)
    labels = dataset.train_labels.to(device)
    counter = ForgettingCounter(labels)
    config = TrainConfig(epochs=epochs, batch_size=256, backend=backend)
    checkpoint = Checkpoint(path.with_suffix(".partial.pt"), state=counter.state_dict, restore=counter.load_state_dict)
    with _bar(progress, epochs, f"train {model} on the training split") as bar:
        (net,) = train_from_scratch(
            builder,
            dataset.train_images.to(device),
            labels,
            config,
            seeds=[seed],
            progress=bar.update,
            on_step=counter,
            checkpoint=checkpoint,
        )
    forgetting, learned = counter.counts(epochs), counter.learned.cpu()
    net.eval()
    plain = builder()  # the state dict of a network on any backend loads into a plain one
    plain.load_state_dict(net.state_dict())
    atomic_torch_save(
        {"state_dict": plain.state_dict(), "forgetting": forgetting, "learned": learned, "key": key}, path
    )
    checkpoint.discard()
    return TrainedNet(net, forgetting, learned, key, cached=False)


class ForgettingCounter:
    """An engine step hook that counts forgetting events per training image (Toneva et al. 2019): a
    presentation at which the image is misclassified after being classified correctly at its previous one."""

    def __init__(self, labels: torch.Tensor) -> None:
        self.labels = labels
        n = len(labels)
        self.previous = torch.zeros(n, dtype=torch.bool, device=labels.device)
        self.learned = torch.zeros(n, dtype=torch.bool, device=labels.device)
        self.events = torch.zeros(n, dtype=torch.long, device=labels.device)

    def __call__(self, _module: int, idx: torch.Tensor, logits: torch.Tensor) -> None:
        correct = logits.argmax(1) == self.labels[idx]
        self.events[idx] += (self.previous[idx] & ~correct).long()
        self.previous[idx] = correct
        self.learned[idx] |= correct

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"previous": self.previous, "learned": self.learned, "events": self.events}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            getattr(self, name).copy_(value)

    def counts(self, epochs: int) -> torch.Tensor:
        """Events per image; never learned: ``epochs + 1``, more than a learned image can have (Toneva et al.
        rank them as the most forgotten)."""
        return torch.where(self.learned, self.events, torch.full_like(self.events, epochs + 1)).cpu()


@torch.inference_mode()
def embed(net: nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``net``'s embedding (the classifier's input) of ``images``, in eval mode, as a CPU tensor [N, D]."""
    if not hasattr(net, "embed"):
        raise TypeError(f"{type(net).__name__} has no embed(); the selection methods need a ConvNet")
    net.eval()
    out = [net.embed(images[i : i + EMBED_BATCH].to(device)).float().cpu() for i in range(0, len(images), EMBED_BATCH)]
    return torch.cat(out) if out else torch.empty(0)


def _bar(enabled: bool, total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="ep", dynamic_ncols=True)
