"""Resumable training (nasproxy.engine.Checkpoint): a run killed part-way and continued from its checkpoint
ends exactly where an uninterrupted run ends."""

from functools import partial

import pytest
import torch

from nasproxy.engine import Checkpoint, EpochHook, TrainConfig, fit, train_from_scratch
from nasproxy.models import ConvNetSpec, convnet_builder
from tests._helpers import separable


class Killed(Exception):
    pass


def _builder(norm="batch"):
    spec = ConvNetSpec(width=8, depth=2, norm=norm)
    return partial(convnet_builder(spec), channels=1, num_classes=4, image_size=(28, 28))


def _killed_at(epoch_of_death: int, network: int):
    """An epoch hook that stops the process (an exception) after ``epoch_of_death`` of network ``network``."""

    def fn(epoch, indices, nets):
        if epoch == epoch_of_death and network in indices:
            raise Killed

    return EpochHook(frozenset({epoch_of_death}), fn)


def _same(a, b):
    for x, y in zip(a, b):
        for (ka, va), (kb, vb) in zip(x.state_dict().items(), y.state_dict().items()):
            assert ka == kb
            assert torch.equal(va, vb), ka


@pytest.mark.parametrize("pack", [1, 3])
@pytest.mark.parametrize("kill", [(2, 0), (3, 1), (2, 2)])  # (epoch, network) the run dies after
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path, pack, kill):
    images, labels = separable(40)  # 3 shuffled batches an epoch; the learning rate decays after epoch 2
    config = TrainConfig(epochs=5, batch_size=16, pack=pack)
    seeds = [3, 4, 5]
    whole = train_from_scratch(_builder(), images, labels, config, seeds=seeds)

    ckpt = Checkpoint(tmp_path / "run.pt", interval=0)
    with pytest.raises(Killed):
        train_from_scratch(_builder(), images, labels, config, seeds=seeds, hook=_killed_at(*kill), checkpoint=ckpt)
    assert ckpt.path.exists()
    epochs_seen = []
    resumed = train_from_scratch(
        _builder(),
        images,
        labels,
        config,
        seeds=seeds,
        progress=epochs_seen.append,
        checkpoint=ckpt,
    )
    _same(whole, resumed)
    assert sum(epochs_seen) == 5 * 3  # a resumed run's progress counts the epochs done before too
    ckpt.discard()
    assert not ckpt.path.exists()


def test_a_finished_checkpoint_trains_nothing_more(tmp_path):
    images, labels = separable(40)
    config = TrainConfig(epochs=3, batch_size=16, pack=1)
    ckpt = Checkpoint(tmp_path / "run.pt", interval=0)
    first = train_from_scratch(_builder(), images, labels, config, seeds=[0, 1], checkpoint=ckpt)
    steps = []
    again = train_from_scratch(
        _builder(), images, labels, config, seeds=[0, 1], checkpoint=ckpt, on_step=lambda *a: steps.append(1)
    )
    assert steps == []
    _same(first, again)
    # on the backend training leaves them on, so that they compute exactly what the trained ones compute
    assert [type(m) for m in again[0].modules()] == [type(m) for m in first[0].modules()]
    assert torch.equal(first[0].eval()(images), again[0].eval()(images))


def test_the_callers_state_is_saved_and_restored_with_the_networks(tmp_path):
    images, labels = separable(40)
    config = TrainConfig(epochs=4, batch_size=16, pack=1)
    seen = {"steps": 0}
    ckpt = Checkpoint(
        tmp_path / "run.pt", interval=0, state=lambda: dict(seen), restore=lambda saved: seen.update(saved)
    )

    def count(*_):
        seen["steps"] += 1

    with pytest.raises(Killed):
        train_from_scratch(
            _builder(), images, labels, config, seeds=[0], on_step=count, hook=_killed_at(3, 0), checkpoint=ckpt
        )
    seen["steps"] = -100  # lost with the process
    train_from_scratch(_builder(), images, labels, config, seeds=[0], on_step=count, checkpoint=ckpt)
    assert seen["steps"] == 4 * 3  # the steps of epochs 1-2 restored (the kill came before epoch 3's save)


def test_a_checkpoint_of_other_settings_is_ignored_with_a_warning(tmp_path):
    images, labels = separable(40)
    ckpt = Checkpoint(tmp_path / "run.pt", interval=0)
    with pytest.raises(Killed):
        train_from_scratch(
            _builder(),
            images,
            labels,
            TrainConfig(epochs=4, batch_size=16),
            seeds=[0],
            hook=_killed_at(2, 0),
            checkpoint=ckpt,
        )
    other = TrainConfig(epochs=4, batch_size=16, lr=0.02)
    with pytest.warns(UserWarning, match="another run"):
        resumed = train_from_scratch(_builder(), images, labels, other, seeds=[0], checkpoint=ckpt)
    _same(train_from_scratch(_builder(), images, labels, other, seeds=[0]), resumed)
    ckpt.path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="unreadable"):
        train_from_scratch(_builder(), images, labels, other, seeds=[0], checkpoint=ckpt)


def test_saves_wait_for_the_interval(tmp_path):
    images, labels = separable(40)
    ckpt = Checkpoint(tmp_path / "run.pt", interval=3600)
    fit_modules = [_builder()()]
    stats = fit(
        fit_modules,
        images,
        labels,
        TrainConfig(epochs=2, batch_size=16),
        generators=[torch.Generator().manual_seed(0)],
        checkpoint=ckpt,
    )
    assert not ckpt.path.exists() and not stats.resumed


def test_an_unwritable_checkpoint_warns_and_training_goes_on(tmp_path):
    images, labels = separable(40)
    blocker = tmp_path / "file"
    blocker.write_text("")
    ckpt = Checkpoint(blocker / "run.pt", interval=0)  # its folder would be a file: nothing can be written
    config = TrainConfig(epochs=3, batch_size=16)
    with pytest.warns(UserWarning, match="without checkpoints: cannot write"):
        trained = train_from_scratch(_builder(), images, labels, config, seeds=[0], checkpoint=ckpt)
    _same(train_from_scratch(_builder(), images, labels, config, seeds=[0]), trained)
