"""End to end on the `tiny` space: two proxies and a ground truth searched on a small real Fashion-MNIST subset,
then `nasproxy report`."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from nasproxy.cli import main
from nasproxy.report import COLUMNS


def _run(args):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_report_end_to_end_on_tiny_is_reproducible(small_fmnist, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = str(tmp_path / "studies.journal")
    data = ["--dataset", small_fmnist, "--holdout", "1500", "--device", "cpu"]  # 500 training images
    _run(["condense", "--method", "random", "--ipc", "5", "--out", "random.pt", "-q", *data])
    common = ["--space", "tiny", "--storage", store, "-q"]
    _run(["search", *common, "--proxy", "random", "--proxy-file", "random.pt", "--epochs", "10", "--repeats", "2"])
    _run(["search", *common, "--proxy", "params", "--dataset", small_fmnist, "--holdout", "1500"])
    _run(["search", *common, "--proxy", "full", "--epochs", "4", "--repeats", "2", *data])
    out = tmp_path / "report"
    args = ["report", "--dataset", small_fmnist, "--space", "tiny", "--storage", store, "--out", str(out)]
    args += ["--bootstrap", "200"]
    text = _run(args)
    assert "random" in text and "params" in text and "ceiling" in text

    table = pd.read_csv(out / "table.csv")
    assert list(table.columns) == COLUMNS
    assert sorted(table["proxy"]) == ["params", "random"]
    assert (table["architectures"] == 8).all() and (table["with_truth"] == 8).all()
    random = table.set_index("proxy").loc["random"]
    assert -1 <= random["spearman"] <= 1 and random["spearman_ci_low"] <= random["spearman_ci_high"]
    assert random["images"] == 50 and random["repeats"] == 2 and random["seconds"] > 0
    assert random["condense_seconds"] >= 0
    report = json.loads((out / "report.json").read_text())
    assert report["truth"]["repeats"] == 2 and report["truth"]["metric"] == "test"
    assert report["truth"]["convergence"]["half_epochs"] == 2
    assert report["bootstrap"]["resamples"] == 200
    preferences = pd.read_csv(out / "preferences.csv")
    assert set(preferences["proxy"]) == {"params", "random"} and preferences["architectures"].min() >= 1
    (comparison,) = pd.read_csv(out / "comparisons.csv").itertuples()  # the best row (no ours) against the other
    assert {comparison.reference, comparison.proxy} == {"params", "random"} and comparison.architectures == 8
    assert f"{comparison.reference} vs {comparison.proxy}: Δρ" in text
    names = ["table.csv", "table.md", "comparisons.csv", "preferences.csv", "report.json", "README.md"]
    figs = ("scatter", "correlations", "cost", "ranks", "preferences")
    names += [f"{fig}.{ext}" for fig in figs for ext in ("png", "pdf")]
    first = {name: (out / name).read_bytes() for name in names}
    assert all(len(content) > 200 for name, content in first.items() if name != "comparisons.csv")
    assert "| random |" in first["table.md"].decode()

    as_json = json.loads(_run([*args, "--json"]))  # the same report again, its table printed as JSON
    assert {name: (out / name).read_bytes() for name in names} == first
    assert {row["proxy"] for row in as_json} == {"params", "random"}

    # the same studies over a listed subset: every row and the ground truth count only those
    listed = tmp_path / "width16.txt"
    listed.write_text(
        "# the width-16 half\n"
        + "\n".join(f"convnet-w16-d{d}-{n}-relu-avg" for d in (1, 2) for n in ("none", "instance"))
    )
    _run([*args, "--archs", str(listed), "--out", str(tmp_path / "w16"), "--no-readme"])
    subset = pd.read_csv(tmp_path / "w16" / "table.csv")
    assert (subset["architectures"] == 4).all() and (subset["with_truth"] == 4).all()
    assert subset["selected"].str.startswith("convnet-w16-").all()
    assert len(json.loads((tmp_path / "w16" / "report.json").read_text())["architectures"]) == 4
    assert {name: (out / name).read_bytes() for name in names} == first  # the full report is untouched


def test_report_without_a_ground_truth_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["report", "--space", "tiny", "--storage", str(tmp_path / "none.journal")])
    assert result.exit_code == 2 and "no storage at" in result.output


def test_report_needs_to_know_what_to_compare():
    result = CliRunner().invoke(main, ["report"])
    assert result.exit_code == 2 and "--space" in result.output
