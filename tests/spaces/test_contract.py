"""What every built-in search space promises, checked for each one there is (a new space file gets these
tests without editing a list): distinct ids that round-trip, a seeded sample, and networks that build fresh
and classify images of the shapes nasproxy's datasets have."""

import pytest
import torch

from nasproxy.spaces import list_spaces, load_space


@pytest.mark.parametrize("name", list_spaces())
def test_every_space_keeps_its_contract(name):
    space = load_space(name)
    candidates = space.candidates()
    ids = [c.arch_id for c in candidates]
    assert candidates and len(set(ids)) == len(ids) == len(space)
    assert all(space.get(i).arch_id == i for i in ids[:: max(1, len(ids) // 20)])
    sample = [c.arch_id for c in space.sample(min(5, len(space)), seed=1)]
    assert sample == [c.arch_id for c in space.sample(min(5, len(space)), seed=1)] and set(sample) <= set(ids)
    for cand in {candidates[0].arch_id: candidates[0], candidates[-1].arch_id: candidates[-1]}.values():
        for channels, size in ((1, 28), (3, 32)):
            torch.manual_seed(0)
            net = space.build(cand.spec, channels=channels, num_classes=10, image_size=(size, size))
            torch.manual_seed(0)
            twin = space.build(cand.spec, channels=channels, num_classes=10, image_size=(size, size))
            x = torch.randn(2, channels, size, size)
            assert net(x).shape == (2, 10) and torch.equal(net(x), twin(x))  # same seed, same network
