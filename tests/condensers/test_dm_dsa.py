"""DM and DSA: seeded, resumable, matching what they define; DSA proxies train with their augmentation in
evaluation and search, and saying so changes nothing for proxies without one (study names stay)."""

import hashlib
import json

import pytest
import torch

from nasproxy import condense, evaluate_condensed_set
from nasproxy.augment import DSA_STRATEGY, default_strategy
from nasproxy.condensers import CONDENSERS, RunContext
from nasproxy.engine import TrainConfig
from nasproxy.search.proxies import Protocol

SMALL = "convnet-w8-d1-instance-relu-avg"


def _run(method, dataset, tmp_path, *, iterations, resume=False, **options):
    condenser = CONDENSERS.get(method).from_options(
        {"model": SMALL, "real_batch": 8, "iterations": iterations, **options}
    )
    context = RunContext(device=torch.device("cpu"), checkpoint=tmp_path / "ckpt.pt", resume=resume, progress=False)
    return condenser.condense(dataset, ipc=2, seed=0, context=context)


def test_dm_loss_is_the_squared_distance_of_class_mean_embeddings(small_mnist, tmp_path):
    from nasproxy.condensers import dm

    result = _run("dm", small_mnist, tmp_path, iterations=1, augment="none", lr_img=0.0)
    losses = result.extra["loss_history"]
    # re-derive iteration 0 by hand: the same network, the same real images, the starting images
    build = dm.partial(dm.model_builder(SMALL), channels=1, num_classes=10, image_size=(28, 28))
    net = dm.build_seeded(build, dm.mix(0, 0, 1), torch.device("cpu")).train()
    gen = torch.Generator().manual_seed(dm.mix(0, 0, 3))
    by_class = [small_mnist.train_images[idx] for idx in small_mnist.class_indices()]
    real = torch.stack([x[torch.randperm(len(x), generator=gen)[:8]] for x in by_class])
    syn = result.images.view(10, 2, 1, 28, 28)  # lr 0: still the starting images
    with torch.no_grad():
        want = sum(((net.embed(real[c]).mean(0) - net.embed(syn[c]).mean(0)) ** 2).sum() for c in range(10)).item() / 10
    assert losses[0] == pytest.approx(want, rel=1e-5)


def test_dm_is_seeded_and_resumes_to_the_same_images(small_mnist, tmp_path):
    whole = _run("dm", small_mnist, tmp_path / "a", iterations=4, checkpoint_every=1)
    again = _run("dm", small_mnist, tmp_path / "b", iterations=4, checkpoint_every=1)
    assert torch.equal(whole.images, again.images)
    _run("dm", small_mnist, tmp_path / "c", iterations=2, checkpoint_every=1)
    resumed = _run("dm", small_mnist, tmp_path / "c", iterations=4, checkpoint_every=1, resume=True)
    torch.testing.assert_close(resumed.images, whole.images)
    assert whole.extra["augment"] == default_strategy("mnist") and torch.bincount(whole.labels).tolist() == [2] * 10
    start = _run("dm", small_mnist, tmp_path / "d", iterations=0)
    assert not torch.equal(start.images, whole.images)


def test_dsa_augments_matching_and_its_proxies_train_with_it(small_mnist, tmp_path):
    dsa = condense(small_mnist, method="dsa", ipc=1, seed=0, options={"model": SMALL, "iterations": 2, "real_batch": 8})
    dc = condense(small_mnist, method="dc", ipc=1, seed=0, options={"model": SMALL, "iterations": 2, "real_batch": 8})
    strategy = default_strategy(small_mnist.name)  # digits: no flips
    assert dsa.meta["augment"] == strategy and "flip" not in strategy and dc.meta["augment"] is None
    assert not torch.equal(dsa.images, dc.images)
    config = TrainConfig(epochs=2, backend="aten")
    trained = evaluate_condensed_set(dsa, small_mnist, model=SMALL, num_models=1, config=config)
    plain = evaluate_condensed_set(dsa, small_mnist, model=SMALL, num_models=1, config=config, augment="none")
    assert trained.config.augment == strategy and plain.config.augment is None
    assert evaluate_condensed_set(dc, small_mnist, model=SMALL, num_models=1, config=config).config.augment is None


def test_protocols_without_augmentation_keep_their_study_names():
    protocol = Protocol(proxy="ours", dataset="fashion-mnist", holdout=5000, split_seed=0, val_fingerprint="abc")
    assert "augment" not in protocol.as_dict()
    digest = hashlib.sha256(json.dumps(protocol.as_dict(), sort_keys=True).encode()).hexdigest()[:10]
    # the hash this protocol had before the field existed (nasproxy at a393602): stored studies keep their names
    assert digest == "c693468c19"
    augmented = Protocol(
        proxy="dsa", dataset="fashion-mnist", holdout=5000, split_seed=0, val_fingerprint="abc", augment=DSA_STRATEGY
    )
    assert augmented.as_dict()["augment"] == DSA_STRATEGY


def test_a_search_on_a_dsa_file_trains_with_its_augmentation(small_mnist, idx_root, tmp_path):
    from nasproxy.search import SearchContext, SearchRequest

    dsa = condense(small_mnist, method="dsa", ipc=1, seed=0, options={"model": SMALL, "iterations": 1, "real_batch": 8})
    path = tmp_path / "dsa.pt"
    dsa.save(path)

    def context(**kw):
        request = SearchRequest(
            space="tiny",
            proxy="dsa",
            dataset=None,
            proxy_file=str(path),
            data_root=str(idx_root),
            storage=str(tmp_path / "s.journal"),
            **kw,
        )
        return SearchContext(request)

    auto, off = context(), context(augment="none")
    strategy = default_strategy(small_mnist.name)
    assert auto.protocol.augment == strategy and auto.protocol.train_config().augment == strategy
    assert off.protocol.augment is None and auto.study_name != off.study_name


def test_dm_lowers_its_matching_loss(small_mnist, tmp_path):
    result = _run("dm", small_mnist, tmp_path, iterations=40, init="noise", augment="none", real_batch=16)
    losses = result.extra["loss_history"]
    # a fresh random network per iteration makes single losses noisy: compare the first and last tens
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])
