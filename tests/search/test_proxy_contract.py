"""What every registered proxy promises, checked for each one the registry holds (a new proxy gets these
tests without editing a list): one finite score per architecture through the real search, recorded with its
seconds, and the same score from the same seed."""

import math

import pytest

import nasproxy
from nasproxy.search import PROXIES
from tests._helpers import fast_condense_options

ARCHS = ["convnet-w16-d1-none-relu-avg", "convnet-w32-d2-instance-relu-avg"]


def _condensed_set(method, dataset, path):
    nasproxy.condense(dataset, method=method, ipc=2, seed=0, options=fast_condense_options(method)).save(path)
    return path


@pytest.mark.parametrize("name", PROXIES.names())
def test_every_proxy_keeps_its_contract(name, small_mnist, env):
    proxy = PROXIES.get(name)
    file = None
    if proxy.file == "required":
        file = _condensed_set(getattr(proxy, "method", name), small_mnist, env / "set.pt")
    common = dict(space="tiny", proxy=name, proxy_file=file, dataset="mnist", holdout=50, archs=ARCHS)
    if proxy.default_epochs:  # a training proxy: as short as it goes
        common.update(epochs=1, repeats=1)
    first = nasproxy.search(storage=env / "a.journal", **common)
    assert first.finished and sorted(first.trials["arch_id"]) == sorted(ARCHS)
    assert all(math.isfinite(v) for v in first.trials["value"])
    assert (first.trials["seconds"] >= 0).all()
    again = nasproxy.search(storage=env / "b.journal", **common)
    by_arch = dict(zip(again.trials["arch_id"], again.trials["value"]))
    assert all(by_arch[a] == v for a, v in zip(first.trials["arch_id"], first.trials["value"]))
