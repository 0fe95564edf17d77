"""What every registered condenser promises, checked for each one the registry holds (a new condenser gets
these tests without editing a list): ipc images of every class, finite, of the dataset's shape, the same
for the same seed, and provenance naming the method and the seed."""

import dataclasses

import pytest
import torch

from nasproxy import condense
from nasproxy.condensers import CONDENSERS

# the fastest setting of every option a condenser may take; each gets those its Config has
FAST = {
    "iterations": 1,
    "model": "convnet-w8-d1-instance-relu-avg",
    "real_batch": 4,
    "outer_loop": 1,
    "inner_loop": 1,
    "epochs": 1,
}


def _fast(name: str) -> dict:
    fields = {f.name for f in dataclasses.fields(CONDENSERS.get(name).Config)}
    return {k: v for k, v in FAST.items() if k in fields}


@pytest.mark.parametrize("name", CONDENSERS.names())
def test_every_condenser_keeps_its_contract(name, small_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("NASPROXY_CACHE", str(tmp_path / "cache"))
    made = condense(small_mnist, method=name, ipc=2, seed=3, options=_fast(name))
    assert made.images.shape == (20, *small_mnist.image_shape)
    assert torch.bincount(made.labels, minlength=10).tolist() == [2] * 10
    assert torch.isfinite(made.images).all()
    assert made.meta["method"] == name and made.meta["seed"] == 3 and made.meta["ipc"] == 2
    assert made.meta["val_fingerprint"] == small_mnist.val_fingerprint  # the hold-out it never saw
    again = condense(small_mnist, method=name, ipc=2, seed=3, options=_fast(name))
    assert torch.equal(made.images, again.images) and torch.equal(made.labels, again.labels)
