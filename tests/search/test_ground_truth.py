"""The ground truth (``--proxy full``) scores its networks at a series of epochs within one training run."""

import math

import pytest
import torch

from nasproxy.search.proxies import PROXIES, Runtime
from nasproxy.search.proxies._training import score_epochs, train_and_score
from nasproxy.spaces import load_space


def test_score_epochs_double_up_to_the_last_and_include_the_half():
    assert score_epochs(16) == [1, 2, 4, 8]
    assert score_epochs(12) == [1, 2, 4, 6, 8]
    assert score_epochs(4) == [1, 2]
    assert score_epochs(1) == []


def _full_protocol(dataset, epochs):
    from nasproxy.search.proxies import Protocol

    return Protocol(
        proxy="full",
        dataset=dataset.name,
        holdout=len(dataset.val_images),
        split_seed=0,
        val_fingerprint=dataset.val_fingerprint,
        epochs=epochs,
        repeats=2,
        score_test=True,
    )


def test_scoring_at_intermediate_epochs_leaves_training_unchanged(small_mnist):
    space = load_space("tiny")
    cand = space.candidates()[0]
    protocol = _full_protocol(small_mnist, epochs=6)
    runtime = Runtime(device=torch.device("cpu"))
    args = (space, cand, small_mnist, protocol, small_mnist.train_images, small_mnist.train_labels)
    config = protocol.train_config()
    at_end = train_and_score(*args, config, runtime)
    series = train_and_score(*args, config, runtime, at_epochs=score_epochs(6))
    assert series.attrs["val_accs"] == at_end.attrs["val_accs"]
    assert series.attrs["test_accs"] == at_end.attrs["test_accs"]
    assert "val_accs_at" not in at_end.attrs
    assert sorted(series.attrs["val_accs_at"], key=int) == ["1", "2", "3", "4"]
    assert sorted(series.attrs["test_accs_at"], key=int) == ["1", "2", "3", "4"]
    assert series.attrs["val_accs_half"] == series.attrs["val_accs_at"]["3"] and series.attrs["half_epochs"] == 3
    for accs in [*series.attrs["val_accs_at"].values(), *series.attrs["test_accs_at"].values()]:
        assert len(accs) == 2 and all(0 <= a <= 1 and not math.isnan(a) for a in accs)
    # the networks learn: later scores are not all below the first epoch's (a separable toy set)
    assert max(series.attrs["val_accs"]) >= min(series.attrs["val_accs_at"]["1"])


def test_full_proxy_prices_every_scoring_pass(small_mnist):
    full = PROXIES.get("full")
    short, long = _full_protocol(small_mnist, 4), _full_protocol(small_mnist, 16)
    scored = len(small_mnist.val_images) + len(small_mnist.test_images)
    assert full.work(short, small_mnist).scored_images == scored * 3  # epochs 1, 2 and the end
    assert full.work(long, small_mnist).scored_images == scored * 5  # 1, 2, 4, 8 and the end


@pytest.mark.parametrize("epochs", [2, 5])
def test_score_epochs_are_before_the_last(epochs):
    assert all(1 <= e < epochs for e in score_epochs(epochs))
