"""Proxies that train every candidate: on a condensed set, on the real training set for the
same number of SGD steps (early-stopping), or on the whole real training set (full, the ground truth)."""

from __future__ import annotations

import dataclasses
import math
import time
from functools import partial

from nasproxy.condensers import CONDENSERS
from nasproxy.engine import Checkpoint, EpochHook, TrainConfig, accuracy, train_from_scratch
from nasproxy.search.proxies._base import PROXIES, Proxy, Score, Work, epochs_work, register_proxy

# The ground truth: every architecture trained on the whole training set (minus the hold-out) FULL_REPEATS
# times, so that a report can measure the truth's own noise (its repeat-vs-repeat rank correlation, the ceiling
# of any proxy). FULL_EPOCHS: 4 passes over 55,000 Fashion-MNIST images are 860 SGD steps of 256, the learning
# rate divided by 10 after 2 of them as in every nasproxy training. Each network is also scored at epochs 1, 2,
# 4, ... and half-way (score_epochs), so that a report shows at which length the ranking settles. Four epochs is
# short: over paper720's W <= 64 ConvNets on Fashion-MNIST it settled only at the edge, 16 settled
# (results/fashion-mnist-nas/README.md), so a truth to judge proxies by passes --epochs 16.
FULL_EPOCHS = 4
FULL_REPEATS = 3
# a condensed set of every registered condenser is a proxy of the same name; "ours" is the paper's name for DC
FILE_PROXY_METHODS = {"ours": "dc", **{name: name for name in CONDENSERS.names()}}


def builder(space, cand, dataset):
    c, h, w = dataset.image_shape
    return lambda: space.build(cand.spec, channels=c, num_classes=dataset.num_classes, image_size=(h, w))


def _scored_images(protocol, dataset) -> int:
    return len(dataset.val_images) + (len(dataset.test_images) if protocol.score_test else 0)


def score_epochs(epochs: int) -> list[int]:
    """Epochs before the last at which the ground truth scores its networks: 1, 2, 4, 8, ... and half the
    epochs (the last epoch before the learning-rate decay), so that a report can tell at which length the
    ranking settles, within one training run."""
    doubling = {2**i for i in range(epochs.bit_length()) if 2**i < epochs}
    return sorted(doubling | ({epochs // 2} - {0}))


def train_and_score(space, cand, dataset, protocol, images, labels, config, runtime, *, at_epochs=()) -> Score:
    """Train ``protocol.repeats`` seeded networks and rank by their mean validation accuracy. ``at_epochs``:
    also score them (validation, and test where the protocol scores it) after these epochs; that scoring
    leaves training unchanged (tests check it). With ``runtime.checkpoint``, training resumes from it; the
    attributes then say how many seconds of training came from the earlier run (``resumed_seconds``)."""
    seeds = [protocol.seed + r for r in range(protocol.repeats)]
    device, config = runtime.device, dataclasses.replace(config, backend=runtime.backend)
    val_images, val_labels = dataset.val_images.to(device), dataset.val_labels.to(device)
    test_images = test_labels = None
    if protocol.score_test:
        test_images, test_labels = dataset.test_images.to(device), dataset.test_labels.to(device)
    at_epochs = sorted(e for e in set(at_epochs) if 1 <= e < config.epochs)
    # {epoch: [accuracy of each network]}; keys are strings, as a trial's JSON attributes keep them
    val_at = {str(e): [math.nan] * len(seeds) for e in at_epochs}
    test_at = {str(e): [math.nan] * len(seeds) for e in at_epochs} if protocol.score_test else {}
    hook = None
    if at_epochs:

        def score_now(epoch, indices, nets):
            scored = partial(accuracy, nets, precision=protocol.precision, backend=runtime.backend)
            for into, images_, labels_ in ((val_at, val_images, val_labels), (test_at, test_images, test_labels)):
                if str(epoch) in into:
                    for i, acc in zip(indices, scored(images_, labels_)):
                        into[str(epoch)][i] = acc

        hook = EpochHook(frozenset(at_epochs), score_now)
    start = time.perf_counter()
    earlier = [0.0]  # seconds of training before the run this one resumes

    def saved_state() -> dict:
        return {"val_at": val_at, "test_at": test_at, "seconds": earlier[0] + time.perf_counter() - start}

    def restore(state: dict) -> None:
        val_at.update(state.get("val_at", {}))
        test_at.update(state.get("test_at", {}))
        earlier[0] = state["seconds"]

    checkpoint = (
        None if runtime.checkpoint is None else Checkpoint(runtime.checkpoint, state=saved_state, restore=restore)
    )
    nets = train_from_scratch(
        builder(space, cand, dataset),
        images.to(device),
        labels.to(device),
        config,
        seeds=seeds,
        hook=hook,
        checkpoint=checkpoint,
    )
    train_seconds = earlier[0] + time.perf_counter() - start
    score = partial(accuracy, nets, precision=protocol.precision, compile=config.compile, backend=runtime.backend)
    val = score(val_images, val_labels)
    mean = sum(val) / len(val)
    std = math.sqrt(sum((v - mean) ** 2 for v in val) / len(val))
    seen = len(images) if config.max_steps is None else min(len(images), config.max_steps * config.batch_size)
    attrs = {"val_accs": val, "val_std": std, "seeds": seeds, "train_seconds": train_seconds, "train_images": seen}
    if earlier[0]:
        attrs["resumed_seconds"] = earlier[0]
    if at_epochs:
        attrs["val_accs_at"] = val_at
        if test_at:
            attrs["test_accs_at"] = test_at
        half = config.epochs // 2
        if str(half) in val_at:  # what reports before the epoch series read
            attrs.update(half_epochs=half, val_accs_half=val_at[str(half)])
    if protocol.score_test:
        test = score(test_images, test_labels)
        attrs.update(test_accs=test, test_mean=sum(test) / len(test))
    return Score(mean, attrs)


class TrainOnFile(Proxy):
    """Train on a condensed set made by one condenser (``ours`` is the paper's name for DC)."""

    file = "required"

    def __init__(self, name: str, method: str) -> None:
        self.name, self.method = name, method
        self.description = f"train on a condensed set made by `nasproxy condense --condenser {method}`"

    def score(self, space, cand, dataset, protocol, condensed, runtime) -> Score:
        config = protocol.train_config()
        return train_and_score(space, cand, dataset, protocol, condensed.images, condensed.labels, config, runtime)

    def work(self, protocol, dataset) -> Work:
        return epochs_work(
            protocol.epochs, protocol.proxy_images, protocol.batch_size, _scored_images(protocol, dataset)
        )


def early_stopping_steps(protocol) -> tuple[int, int]:
    """(SGD steps, batch size) of proxy training, which early-stopping spends on the real training set."""
    n = protocol.proxy_images
    batch = min(protocol.batch_size, n)
    return protocol.epochs * math.ceil(n / batch), batch


@register_proxy
class EarlyStopping(Proxy):
    name = "early-stopping"
    description = "the real training set for as many SGD steps (and batch size) as proxy training takes"
    file = "optional"  # its size sets the budget (default: --ipc images per class)

    def score(self, space, cand, dataset, protocol, condensed, runtime) -> Score:
        steps, batch = early_stopping_steps(protocol)
        epochs = math.ceil(steps / math.ceil(len(dataset.train_images) / batch))
        config = TrainConfig(
            epochs=epochs, batch_size=batch, lr=protocol.lr, precision=protocol.precision, max_steps=steps
        )
        images, labels = dataset.train_images, dataset.train_labels
        return train_and_score(space, cand, dataset, protocol, images, labels, config, runtime)

    def work(self, protocol, dataset) -> Work:
        steps, batch = early_stopping_steps(protocol)
        return Work(steps=steps, train_images=steps * batch, scored_images=_scored_images(protocol, dataset))


@register_proxy
class FullData(Proxy):
    name = "full"
    description = "the whole real training set: the ground truth"
    default_epochs = FULL_EPOCHS
    default_repeats = FULL_REPEATS
    scores_test = True

    def score(self, space, cand, dataset, protocol, condensed, runtime) -> Score:
        images, labels = dataset.train_images, dataset.train_labels
        config = protocol.train_config()
        at_epochs = score_epochs(protocol.epochs)
        return train_and_score(space, cand, dataset, protocol, images, labels, config, runtime, at_epochs=at_epochs)

    def work(self, protocol, dataset) -> Work:
        n = len(dataset.train_images)
        scored = _scored_images(protocol, dataset) * (1 + len(score_epochs(protocol.epochs)))
        return epochs_work(protocol.epochs, n, protocol.batch_size, scored)


for _name, _method in FILE_PROXY_METHODS.items():
    PROXIES.register(_name, TrainOnFile(_name, _method))
