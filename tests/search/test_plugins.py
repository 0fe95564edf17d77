"""A user's own proxy as a plugin: from a file through `search` and `report`, from an entry point, and bad
plugins as one line. The example plugin (examples/jacob_cov.py) against a re-derivation of its score."""

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from nasproxy.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "jacob_cov.py"


@pytest.fixture
def cli(idx_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NASPROXY_DATA", str(idx_root))
    monkeypatch.setenv("NASPROXY_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run


COMMON = ["--space", "tiny", "--dataset", "mnist", "--holdout", 50, "--device", "cpu", "--storage", "s.journal"]


def test_a_plugin_from_a_file_through_search_and_report(cli, tmp_path):
    plugin = shutil.copy(EXAMPLE, tmp_path / "my_score.py")
    result = cli("search", *COMMON, "--proxy", f"{plugin}:JacobCov", "-q")
    assert result.exit_code == 0, result.output
    truth = cli("search", *COMMON, "--proxy", "full", "--epochs", 1, "--repeats", 2, "--backend", "aten", "-q")
    assert truth.exit_code == 0, truth.output
    report = cli("report", "--dataset", "mnist", "--space", "tiny", "--storage", "s.journal", "--out", "r")
    assert report.exit_code == 0, report.output
    table = pd.read_csv(tmp_path / "r" / "table.csv")
    row = table[table["proxy"] == "jacob-cov"].iloc[0]
    assert row["architectures"] == 8 and row["with_truth"] == 8 and math.isfinite(row["spearman"])
    assert row["study"].startswith("mnist-tiny-jacob-cov-")
    # a changed plugin (a new version) is a new protocol: a new study, the old one untouched
    Path(plugin).write_text(Path(plugin).read_text().replace('version = "1"', 'version = "2"'))
    again = cli("search", *COMMON, "--proxy", f"{plugin}:JacobCov", "--dry-run")
    assert again.exit_code == 0 and "8 architectures, 0 done" in again.output


def test_an_entry_point_plugin(cli, tmp_path, monkeypatch):
    package = tmp_path / "site"
    (package / "my_proxies").mkdir(parents=True)
    shutil.copy(EXAMPLE, package / "my_proxies" / "__init__.py")
    info = package / "my_proxies-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-proxies\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[nasproxy.proxies]\njacob = my_proxies:JacobCov\n")
    monkeypatch.syspath_prepend(str(package))
    result = cli("search", *COMMON, "--proxy", "jacob", "--sample", 2, "--sample-seed", 0, "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s.journal").exists()
    sys.modules.pop("my_proxies", None)


@pytest.mark.parametrize(
    ("source", "ref", "fragment"),
    [
        ("import nope\n", "bad.py:X", "failed to import"),
        ("class X:\n    name = 'x'\n", "bad.py:X", "is not a nasproxy proxy"),
        ("", "bad.py:Missing", "defines no 'Missing'"),
        (
            "from nasproxy.search import TrainingFree\n"
            "def boom(net, x, y):\n    raise ValueError('no scores today')\n"
            "class X(TrainingFree):\n    name = 'boom'\n    measure = staticmethod(boom)\n",
            "bad.py:X",
            "proxy plugin 'boom' failed on",
        ),
    ],
)
def test_a_bad_plugin_is_one_line(cli, tmp_path, source, ref, fragment):
    (tmp_path / "bad.py").write_text(source)
    result = cli("search", *COMMON, "--proxy", str(tmp_path / ref), "-q")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and fragment in lines[0], result.output
    assert "Traceback" not in result.output


def test_jacob_cov_against_a_re_derivation():
    """Mellor et al. v1 by hand: each image's input gradient of the summed outputs, computed one image at a
    time (a network without batch statistics, so one image alone gives the same gradient), numpy's
    correlation matrix and eigenvalues, and the paper's formula."""
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        from jacob_cov import K, jacob_cov
    finally:
        sys.path.remove(str(EXAMPLE.parent))
    from nasproxy.models import build_model

    torch.manual_seed(0)
    net = build_model("convnet-w16-d2-instance-relu-avg", channels=1, num_classes=10, image_size=(28, 28))
    x = torch.randn(12, 1, 28, 28)
    rows = []
    for image in x:
        one = image[None].clone().requires_grad_(True)
        net(one).sum().backward()
        rows.append(one.grad.flatten().double().numpy())
    eigenvalues = np.linalg.eigvalsh(np.corrcoef(np.stack(rows)))
    expected = -np.sum(np.log(eigenvalues + K) + 1 / (eigenvalues + K))
    assert jacob_cov(net, x, torch.zeros(12, dtype=torch.long)) == pytest.approx(expected, rel=1e-6)
