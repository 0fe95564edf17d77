"""The regret after training a proxy's top k, and each proxy's ρ against a ground truth at several lengths."""

import numpy as np
import pandas as pd
import pytest

from nasproxy.report._curves import regret_after_top_k, rho_across_truth_epochs, trend_lines, truth_at_epochs


def test_regret_after_top_k_is_the_best_truth_minus_the_best_of_the_top_k():
    # the proxy ranks a > b > c > d > e > f; their truths: the best (f, 0.95) is ranked last
    truth = {"a": 0.90, "b": 0.80, "c": 0.93, "d": 0.70, "e": 0.60, "f": 0.95}
    order = list("abcdef")
    frame = pd.DataFrame({"architecture": order, "proxy": "p", "score": np.arange(6, 0, -1), "truth": truth.values()})
    regret = regret_after_top_k(frame, resamples=200)
    assert regret["k"].tolist() == [1, 2, 3, 4, 5, 6]  # k stops at the architectures with a truth
    assert regret["regret"].tolist() == pytest.approx([0.05, 0.05, 0.02, 0.02, 0.02, 0.0])
    assert (regret["regret_ci_low"] >= 0).all() and (regret["regret_ci_low"] <= regret["regret_ci_high"]).all()


def test_truth_at_epochs_reads_the_series_and_the_end():
    trials = pd.DataFrame(
        {
            "architecture": ["a", "b"],
            "test_accs_at": [{"1": [0.5, 0.7], "2": [0.6, 0.8]}, {"1": [0.4, 0.4], "2": [float("nan"), 0.9]}],
            "test_accs": [[0.8, 0.9], [0.85, 0.95]],
        }
    )
    truths = truth_at_epochs(trials, 4, "test")
    expected = {1: {"a": 0.6, "b": 0.4}, 2: {"a": 0.7}, 4: {"a": 0.85, "b": 0.9}}
    assert truths.keys() == expected.keys()
    for epochs, by_arch in expected.items():
        assert truths[epochs] == pytest.approx(by_arch)


def test_rho_across_truth_epochs_follows_a_truth_that_changes():
    rng = np.random.default_rng(0)
    archs = [f"a{i}" for i in range(30)]
    early = rng.standard_normal(30)
    late = -early  # the long truth ranks in reverse of the short one
    scores = pd.DataFrame({"architecture": archs, "proxy": "fast learner", "score": early + 0.01})
    truths = {1: dict(zip(archs, early)), 16: dict(zip(archs, late))}
    series = rho_across_truth_epochs(scores, truths, resamples=200)
    assert series["truth_epochs"].tolist() == [1, 16]
    assert series["spearman"].tolist() == pytest.approx([1.0, -1.0])
    assert series["top10_spearman"].tolist() == pytest.approx([1.0, -1.0])
    first = series.iloc[0]
    assert first["spearman_ci_low"] <= 1.0 <= first["spearman_ci_high"] + 1e-9


def test_trend_reads_the_paired_change_of_rho_from_each_truth_length_to_the_end():
    rng = np.random.default_rng(1)
    archs = [f"a{i}" for i in range(40)]
    early, noise = rng.standard_normal(40), rng.standard_normal(40)
    late = early + 2.0 * noise  # the long truth moves away from the short one
    truths = {1: dict(zip(archs, early)), 4: dict(zip(archs, early + 1e-3 * noise)), 16: dict(zip(archs, late))}
    scores = pd.concat(
        [
            # measures early learning: agrees with the short truth, less with the long one
            pd.DataFrame({"architecture": archs, "proxy": "fast learner", "score": early}),
            # measures the trained network: agrees with the long truth
            pd.DataFrame({"architecture": archs, "proxy": "trained", "score": late}),
        ]
    )
    series = rho_across_truth_epochs(scores, truths, resamples=300).set_index(["proxy", "truth_epochs"])
    fast, trained = series.loc["fast learner"], series.loc["trained"]
    assert fast.loc[1, "trend"] == "falls" and trained.loc[1, "trend"] == "rises"
    for rows in (fast, trained):
        assert rows.loc[1, "change_to_end"] == pytest.approx(rows.loc[16, "spearman"] - rows.loc[1, "spearman"])
        first = rows.loc[1]
        assert first["change_to_end_ci_low"] <= first["change_to_end"] <= first["change_to_end_ci_high"]
        assert rows.loc[16, "trend"] == "" and pd.isna(rows.loc[16, "change_to_end"])  # the end against itself


def test_trend_holds_where_the_truth_did_not_move_beyond_its_noise():
    rng = np.random.default_rng(2)
    archs = [f"a{i}" for i in range(30)]
    truth = rng.standard_normal(30)
    truths = {8: dict(zip(archs, truth)), 16: dict(zip(archs, truth + 0.05 * rng.standard_normal(30)))}
    scores = pd.DataFrame({"architecture": archs, "proxy": "p", "score": truth + rng.standard_normal(30)})
    first = rho_across_truth_epochs(scores, truths, resamples=300).iloc[0]
    assert first["trend"] == "holds"
    assert first["change_to_end_ci_low"] < 0 < first["change_to_end_ci_high"]


def test_trend_lines_group_the_proxies_by_what_their_rho_does():
    rng = np.random.default_rng(1)
    archs = [f"a{i}" for i in range(40)]
    early = rng.standard_normal(40)
    late = early + 2.0 * rng.standard_normal(40)
    scores = pd.concat(
        [
            pd.DataFrame({"architecture": archs, "proxy": "fast learner", "score": early}),
            pd.DataFrame({"architecture": archs, "proxy": "trained", "score": late}),
        ]
    )
    series = rho_across_truth_epochs(scores, {1: dict(zip(archs, early)), 16: dict(zip(archs, late))}, resamples=300)
    lines = trend_lines(series)
    assert [line.split(":")[0] for line in lines] == [
        "ρ against the ground truth from 1 to 16 epochs falls",
        "ρ against the ground truth from 1 to 16 epochs rises",
    ]
    assert lines[0].split(": ")[1].startswith("fast learner -") and lines[1].split(": ")[1].startswith("trained +")
    assert trend_lines(None) == [] and trend_lines(series.iloc[:0]) == []
