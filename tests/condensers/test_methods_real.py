"""Every condenser on a small real Fashion-MNIST subset, through the command line: a condensed set of ipc
images per class with balanced labels, the selection methods' images from the training split only, the same
seed giving the same file, and `evaluate` and `search` working on each file unchanged."""

import json

import pytest
import torch
from click.testing import CliRunner

from nasproxy import CondensedSet
from nasproxy.cli import main
from nasproxy.data import load_dataset

pytestmark = pytest.mark.slow

SMALL = "convnet-w8-d1-instance-relu-avg"
BUDGET = {
    "random": [],
    "herding": ["--model", SMALL, "--epochs", "1"],
    "k-center": ["--model", SMALL, "--epochs", "1"],
    "forgetting": ["--model", SMALL, "--epochs", "1"],
    "dc": ["--model", SMALL, "--iterations", "2", "--real-batch", "16"],
    "dsa": ["--model", SMALL, "--iterations", "2", "--real-batch", "16"],
    "dm": ["--model", SMALL, "--iterations", "3", "--real-batch", "16"],
}


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("method", list(BUDGET))
def test_method_end_to_end_on_real_images(method, small_fmnist, tmp_path, monkeypatch):
    monkeypatch.setenv("NASPROXY_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    data = ["--dataset", small_fmnist, "--holdout", 200]
    for name in ("a.pt", "b.pt"):
        _run("condense", "--method", method, "--ipc", 2, "--seed", 1, *BUDGET[method], *data, "--out", name, "-q")
    a, b = CondensedSet.load("a.pt"), CondensedSet.load("b.pt")
    assert torch.equal(a.images, b.images) and a.meta["method"] == method  # same seed, same condensed set
    assert torch.bincount(a.labels, minlength=10).tolist() == [2] * 10
    dataset = load_dataset(small_fmnist, split=a.split_spec())
    if method in ("random", "herding", "k-center", "forgetting"):
        train = dataset.train_images.flatten(1)
        assert all((train == image.flatten()).all(1).any() for image in a.images)  # training split only
        held_out = torch.cat([dataset.val_images, dataset.test_images]).flatten(1)
        assert not any((held_out == image.flatten()).all(1).any() for image in a.images)
    evaluated = json.loads(_run("evaluate", "a.pt", "--networks", 1, "--epochs", 2, "--json", "--csv", "", "-q").output)
    assert 0.0 <= evaluated["mean"] <= 1.0 and evaluated["augment"] == a.meta.get("augment")
    proxy = "ours" if method == "dc" else method
    search = ["search", "--space", "tiny", "--proxy", proxy, "--proxy-file", "a.pt", "--sample", 2, "--epochs", 1]
    _run(*search, "--repeats", 1, "--storage", "s.journal", "-q")
