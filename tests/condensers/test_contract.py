"""What every registered condenser promises, checked for each one the registry holds (a new condenser gets
these tests without editing a list): ipc images of every class, finite, of the dataset's shape, the same
for the same seed, and provenance naming the method and the seed."""

import pytest
import torch

from nasproxy import condense
from nasproxy.condensers import CONDENSERS
from tests._helpers import fast_condense_options


@pytest.mark.parametrize("name", CONDENSERS.names())
def test_every_condenser_keeps_its_contract(name, small_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("NASPROXY_CACHE", str(tmp_path / "cache"))
    made = condense(small_mnist, method=name, ipc=2, seed=3, options=fast_condense_options(name))
    assert made.images.shape == (20, *small_mnist.image_shape)
    assert torch.bincount(made.labels, minlength=10).tolist() == [2] * 10
    assert torch.isfinite(made.images).all()
    assert made.meta["method"] == name and made.meta["seed"] == 3 and made.meta["ipc"] == 2
    assert made.meta["val_fingerprint"] == small_mnist.val_fingerprint  # the hold-out it never saw
    again = condense(small_mnist, method=name, ipc=2, seed=3, options=fast_condense_options(name))
    assert torch.equal(made.images, again.images) and torch.equal(made.labels, again.labels)
