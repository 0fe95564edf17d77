"""Herding, k-center and forgetting: each selection rule against a brute-force re-derivation on small
embeddings; forgetting events as Toneva et al. define them; and the condensers end to end: real training
images only, class-balanced, seeded, the trained network cached."""

import itertools
from functools import partial

import pytest
import torch

from nasproxy import condense
from nasproxy.condensers._features import ForgettingCounter, TrainedNet, trained_net
from nasproxy.condensers.forgetting import Forgetting
from nasproxy.condensers.herding import Herding
from nasproxy.condensers.kcenter import KCenter
from nasproxy.engine import TrainConfig, train_from_scratch
from nasproxy.models import model_builder

SMALL = "convnet-w8-d1-instance-relu-avg"


def _with_embedding(monkeypatch, module, features):
    monkeypatch.setattr(module, "class_embedding", lambda trained, members, dataset, device: features[members])


def test_herding_picks_greedily_what_keeps_the_running_mean_closest(monkeypatch):
    from nasproxy.condensers import herding

    features = torch.randn(12, 5, generator=torch.Generator().manual_seed(0))
    _with_embedding(monkeypatch, herding, features)
    normed = torch.nn.functional.normalize(features.double(), dim=1)
    mean, chosen = normed.mean(0), []
    for _ in range(4):  # brute force: every unchosen candidate's new running mean
        cost = {i: ((mean - normed[chosen + [i]].mean(0)) ** 2).sum() for i in range(12) if i not in chosen}
        chosen.append(min(cost, key=cost.get))
    got = Herding().select(None, torch.arange(12), None, 4, 0, "cpu")
    assert got.tolist() == chosen


def test_k_center_starts_at_the_centre_and_adds_the_farthest(monkeypatch):
    from nasproxy.condensers import kcenter

    features = torch.randn(15, 3, generator=torch.Generator().manual_seed(1))
    _with_embedding(monkeypatch, kcenter, features)
    f = features.double()
    chosen = [int(((f - f.mean(0)) ** 2).sum(1).argmin())]
    for _ in range(4):
        distance = {i: min(((f[i] - f[j]) ** 2).sum() for j in chosen) for i in range(15) if i not in chosen}
        chosen.append(max(distance, key=distance.get))
    assert KCenter().select(None, torch.arange(15), None, 5, 0, "cpu").tolist() == chosen


def test_forgetting_takes_the_most_forgotten_and_breaks_ties_by_the_seed():
    counts = torch.tensor([0, 3, 1, 3, 3, 0, 2, 7])
    trained = TrainedNet(None, counts, counts > 0, "key", cached=True)
    members = torch.arange(8)
    picks = {tuple(Forgetting().select(trained, members, None, 3, seed, "cpu").tolist()) for seed in range(20)}
    for pick in picks:
        assert pick[0] == 7 and set(pick[1:]) <= {1, 3, 4}  # 7 forgotten most, then two of the tied 3s
    assert len(picks) > 1  # the seed decides among ties
    # never-learned images (count 7 here, learned False) after every learned one by default, or first
    never = TrainedNet(None, torch.tensor([7, 1, 2, 0]), torch.tensor([False, True, True, True]), "k", True)
    assert Forgetting().select(never, torch.arange(4), None, 2, 0, "cpu").tolist() == [2, 1]
    first = Forgetting(Forgetting.Config(never_learned="first"))
    assert first.select(never, torch.arange(4), None, 2, 0, "cpu").tolist() == [0, 2]


def test_forgetting_events_match_a_re_derivation_from_every_presentation(small_mnist):
    images = small_mnist.train_images[:100]
    # random labels: a network that cannot fit them flips its answers, so images get forgotten
    labels = torch.randint(0, 10, (100,), generator=torch.Generator().manual_seed(0))
    seen = []

    def watch(_module, idx, logits):
        seen.append((idx.clone(), (logits.argmax(1) == labels[idx]).clone()))

    counter = ForgettingCounter(labels)
    builder = partial(model_builder(SMALL), channels=1, num_classes=10, image_size=(28, 28))
    config = TrainConfig(epochs=6, batch_size=32, backend="aten")
    train_from_scratch(builder, images, labels, config, seeds=[0], on_step=lambda *a: (watch(*a), counter(*a)))
    assert len(seen) == 6 * -(-100 // 32)
    history = {i: [] for i in range(100)}
    for idx, correct in seen:
        for i, c in zip(idx.tolist(), correct.tolist()):
            history[i].append(c)
    assert all(len(h) == 6 for h in history.values())  # each image presented once per epoch
    # an event: misclassified after a correct previous presentation; never learned ranks above all (7)
    want = [sum(a and not b for a, b in itertools.pairwise(h)) if any(h) else 7 for h in history.values()]
    assert counter.counts(6).tolist() == want
    assert len(set(want)) > 1


@pytest.mark.parametrize("method", ["herding", "k-center", "forgetting"])
def test_selection_condensers_pick_real_training_images_per_class(small_mnist, tmp_path, monkeypatch, method):
    monkeypatch.setenv("NASPROXY_CACHE", str(tmp_path))
    options = {"model": SMALL, "epochs": 2}
    condensed = condense(small_mnist, method=method, ipc=2, seed=3, options=options)
    again = condense(small_mnist, method=method, ipc=2, seed=3, options=options)
    assert torch.equal(condensed.images, again.images)
    assert torch.bincount(condensed.labels).tolist() == [2] * 10
    index = torch.tensor(condensed.meta["selected"])
    assert torch.equal(condensed.images, small_mnist.train_images[index])  # the training split, nothing else
    assert torch.equal(condensed.labels, small_mnist.train_labels[index]) and len(set(index.tolist())) == 20
    assert not condensed.meta["trained_net_cached"] and again.meta["trained_net_cached"]
    assert condensed.meta["hyperparameters"]["epochs"] == 2


def test_the_trained_network_is_cached_by_what_determines_it(small_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("NASPROXY_CACHE", str(tmp_path))
    first = trained_net(small_mnist, model=SMALL, epochs=1, seed=0, device=torch.device("cpu"))
    cached = trained_net(small_mnist, model=SMALL, epochs=1, seed=0, device=torch.device("cpu"))
    other = trained_net(small_mnist, model=SMALL, epochs=1, seed=1, device=torch.device("cpu"))
    assert not first.cached and cached.cached and not other.cached and first.key != other.key
    assert torch.equal(first.forgetting, cached.forgetting)
    x = small_mnist.train_images[:4]
    torch.testing.assert_close(first.net.eval()(x), cached.net.eval()(x))
    assert len(list((tmp_path / "trained-nets").glob("*.pt"))) == 2


def test_a_killed_selection_network_resumes_to_the_same_network_and_forgetting_counts(
    small_mnist, tmp_path, monkeypatch
):
    import dataclasses

    from nasproxy.condensers import _features
    from nasproxy.engine import Checkpoint

    # random labels: images learned and forgotten again, so that lost counts would show
    noisy = torch.randperm(len(small_mnist.train_labels), generator=torch.Generator().manual_seed(0))
    data = dataclasses.replace(small_mnist, train_labels=small_mnist.train_labels[noisy])
    monkeypatch.setenv("NASPROXY_CACHE", str(tmp_path / "whole"))
    whole = trained_net(data, model=SMALL, epochs=8, seed=0, device=torch.device("cpu"))
    assert whole.forgetting.bincount()[1:8].sum() > 0  # some learned images were forgotten

    monkeypatch.setenv("NASPROXY_CACHE", str(tmp_path / "killed"))
    monkeypatch.setattr(_features, "Checkpoint", partial(Checkpoint, interval=0))  # save every epoch
    presentations = {"n": 0}
    count = ForgettingCounter.__call__

    def dies_in_epoch_6(self, *args):
        presentations["n"] += 1
        if presentations["n"] == 6:  # 150 training images: one step an epoch; dies in epoch 6
            raise KeyboardInterrupt
        count(self, *args)

    monkeypatch.setattr(ForgettingCounter, "__call__", dies_in_epoch_6)
    with pytest.raises(KeyboardInterrupt):
        trained_net(data, model=SMALL, epochs=8, seed=0, device=torch.device("cpu"))
    assert list((tmp_path / "killed" / "trained-nets").glob("*.partial.pt"))
    monkeypatch.setattr(ForgettingCounter, "__call__", count)
    resumed = trained_net(data, model=SMALL, epochs=8, seed=0, device=torch.device("cpu"))
    assert not list((tmp_path / "killed" / "trained-nets").glob("*.partial.pt"))  # discarded once cached
    assert torch.equal(resumed.forgetting, whole.forgetting) and torch.equal(resumed.learned, whole.learned)
    for a, b in zip(resumed.net.state_dict().values(), whole.net.state_dict().values()):
        assert torch.equal(a, b)
