"""The regret after training a proxy's top k, and each proxy's ρ against a ground truth at several lengths."""

import numpy as np
import pandas as pd
import pytest

from nasproxy.report._curves import regret_after_top_k, rho_across_truth_epochs, truth_at_epochs


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
