"""The README's Python walkthrough runs as written, on a slice of the real Fashion-MNIST that it finds where a
user's own copy would be (``NASPROXY_DATA``): the same code path as the whole set, at a fiftieth of its training."""

import re
from pathlib import Path

import pytest

from nasproxy.data._formats import read_idx
from nasproxy.data.fashion_mnist import DEBIAN_FASHION_MNIST
from tests._helpers import write_idx

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_the_python_walkthrough_runs(fmnist, tmp_path, monkeypatch, capsys):
    text = README.read_text()
    section = text[text.index("## The same flow in Python") :]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)[:1]
    for split, keep in (("train", 6_000), ("t10k", 1_000)):  # the default 5,000 validation images stay
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{split}-{kind}-ubyte"
            whole = read_idx(DEBIAN_FASHION_MNIST / f"{name}.gz")
            write_idx(tmp_path / "data" / "fashion-mnist" / name, whole[:keep].numpy())
    monkeypatch.setenv("NASPROXY_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NASPROXY_CACHE", str(tmp_path / "cache"))
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    ranked, truth, report = namespace["ranked"], namespace["truth"], namespace["report"]
    assert ranked.finished and truth.finished and len(ranked.trials) == 4
    assert list(report.table["proxy"]) == ["random"] and report.truth.architectures == 4
    assert not (tmp_path / "results").exists()  # nothing written but what the code named
    assert "spearman" in capsys.readouterr().out
    assert truth.trials["train_images"].eq(1_000).all()  # trained on the slice, not the whole set
