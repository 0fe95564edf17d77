import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from nasproxy.report import (
    bootstrap_intervals,
    design_preferences,
    kendall,
    noise_ceiling,
    rank_statistics,
    spearman,
)

TIED_X = [1, 2, 2, 3, 5, 5, 5, 8, 9, 9]
TIED_Y = [2, 1, 4, 4, 3, 6, 6, 9, 7, 7]


@pytest.mark.parametrize(
    "x, y",
    [
        ([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5]),
        (TIED_X, TIED_Y),
        ([0.1, 0.1, 0.1, 0.3, 0.2, 0.5], [3, 3, 1, 2, 2, 9]),
        ([5, 4, 3, 2, 1], [1, 2, 3, 4, 5]),
    ],
)
def test_correlations_match_scipy_ties_included(x, y):
    assert spearman(x, y) == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)
    assert kendall(x, y) == pytest.approx(sps.kendalltau(x, y).statistic, abs=1e-12)


def test_bootstrap_correlations_match_scipy_on_resamples_with_repeated_architectures():
    # a resample repeats architectures, which ties both coordinates of a pair: tau-b must drop such pairs
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=30), rng.normal(size=30)
    idx = rng.integers(0, 30, size=30)
    assert spearman(x[idx], y[idx]) == pytest.approx(sps.spearmanr(x[idx], y[idx]).statistic, abs=1e-12)
    assert kendall(x[idx], y[idx]) == pytest.approx(sps.kendalltau(x[idx], y[idx]).statistic, abs=1e-12)


def test_constant_input_gives_nan_not_a_number():
    assert math.isnan(spearman([1, 1, 1, 1, 1], [1, 2, 3, 4, 5]))
    assert math.isnan(kendall([1, 1, 1, 1, 1], [1, 2, 3, 4, 5]))


def _frame(proxy_scores: dict[str, list[float]], truth: list[float | None]) -> pd.DataFrame:
    archs = [f"a{i:02d}" for i in range(len(truth))]
    rows = [
        {"architecture": a, "proxy": p, "score": s, "truth": math.nan if t is None else t}
        for p, scores in proxy_scores.items()
        for a, s, t in zip(archs, scores, truth)
    ]
    return pd.DataFrame(rows)


def test_top_k_precision_selected_and_regret_on_a_case_worked_by_hand():
    # 12 architectures; truth accuracy is i / 100 for architecture i (a11 best)
    truth = [i / 100 for i in range(12)]
    # the proxy ranks a00 first, then a11, a10, ... a01 last: right order except that it loves a00
    score = [100.0] + [float(i) for i in range(1, 12)]
    st = rank_statistics(_frame({"p": score}, truth), resamples=200)["p"]
    assert st.architectures == st.with_truth == 12
    assert st.selected == "a00" and st.selected_truth == pytest.approx(0.0)
    assert st.regret == pytest.approx(0.11)
    # top 5 by proxy: a00, a11, a10, a09, a08 -> truth ranks of those: worst, 1st, 2nd, 3rd, 4th
    top5 = sps.spearmanr([100, 11, 10, 9, 8], [0.0, 0.11, 0.10, 0.09, 0.08]).statistic
    assert st.top_spearman[5] == pytest.approx(top5)
    assert st.top_spearman[5] == pytest.approx(1 - 6 * (16 + 1 + 1 + 1 + 1) / (5 * 24))  # hand: d = 4,1,1,1,1
    # truth's top 5 are a11..a07; the proxy's top 5 hold four of them
    assert st.precision[5] == pytest.approx(4 / 5)
    assert st.precision[10] == pytest.approx(9 / 10)
    assert st.top_spearman[20] is None and any("top20" in n for n in st.notes)


def test_reversed_proxy_stays_negative():
    truth = list(np.linspace(0.5, 0.9, 15))
    st = rank_statistics(_frame({"rev": [-t for t in truth]}, truth), resamples=300)["rev"]
    assert st.spearman == pytest.approx(-1.0) and st.kendall == pytest.approx(-1.0)
    assert st.spearman_ci.high <= -0.99 and st.top_spearman[10] == pytest.approx(-1.0)


def test_too_few_points_leave_statistics_empty_with_a_reason():
    truth = [0.1, 0.2, 0.3, None, None, None, None]
    st = rank_statistics(_frame({"p": [1, 2, 3, 4, 5, 6, 7]}, truth), resamples=200)["p"]
    assert st.architectures == 7 and st.with_truth == 3
    assert st.spearman is None and st.kendall is None and st.spearman_ci is None
    assert any("only 3 architectures have a ground truth" in n for n in st.notes)
    # the proxy's favourite has no truth: no selected accuracy, no regret, and a note saying so
    assert st.selected == "a06" and st.selected_truth is None and st.regret is None
    assert any("no ground truth" in n for n in st.notes)


def test_architectures_without_truth_are_left_out_of_the_correlation():
    truth = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, None, None]
    scores = [1, 2, 3, 4, 5, 6, -100, 100]
    st = rank_statistics(_frame({"p": scores}, truth), resamples=200)["p"]
    assert st.with_truth == 6 and st.spearman == pytest.approx(1.0)


def test_bootstrap_interval_covers_the_true_rho_at_its_nominal_rate():
    # population Spearman of a bivariate normal with correlation r is (6 / pi) asin(r / 2)
    r, n, draws = 0.6, 60, 200
    true_rho = 6 / math.pi * math.asin(r / 2)
    rng = np.random.default_rng(0)
    cov = [[1, r], [r, 1]]
    covered = 0
    for d in range(draws):
        x, y = rng.multivariate_normal([0, 0], cov, size=n).T
        ci, _ = bootstrap_intervals(x, y, resamples=400, seed=d)
        covered += ci.low <= true_rho <= ci.high
    assert covered / draws >= 0.90


def test_bootstrap_is_seeded():
    x, y = np.arange(20.0), np.arange(20.0) ** 0.5 + np.sin(np.arange(20.0))
    assert bootstrap_intervals(x, y, seed=3) == bootstrap_intervals(x, y, seed=3)
    assert bootstrap_intervals(x, y, seed=3) != bootstrap_intervals(x, y, seed=4)


def test_repeat_spread_is_each_repeats_own_spearman():
    truth = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    frame = _frame({"p": [1, 2, 3, 4, 5, 6]}, truth)
    reps = pd.DataFrame(
        [{"architecture": f"a{i:02d}", "proxy": "p", "repeat": 0, "score": float(i)} for i in range(6)]
        + [{"architecture": f"a{i:02d}", "proxy": "p", "repeat": 1, "score": float(-i)} for i in range(6)]
    )
    st = rank_statistics(frame, resamples=200, repeats=reps)["p"]
    assert st.repeat_spearman == pytest.approx((1.0, -1.0))


def test_noise_ceiling_from_repeats():
    rng = np.random.default_rng(0)
    quality = np.linspace(0, 1, 40)
    rows = [
        {"architecture": f"a{i}", "repeat": r, "truth": q + rng.normal(scale=0.3)}
        for i, q in enumerate(quality)
        for r in range(3)
    ]
    c = noise_ceiling(pd.DataFrame(rows))
    wide = pd.DataFrame(rows).pivot(index="architecture", columns="repeat", values="truth")
    pairs = [sps.spearmanr(wide[a], wide[b]).statistic for a, b in ((0, 1), (0, 2), (1, 2))]
    assert c.repeats == 3 and c.architectures == 40 and c.pairs == pytest.approx(pairs)
    assert c.repeat_vs_repeat == pytest.approx(np.mean(pairs))
    assert c.repeat_vs_repeat < c.ceiling < 1  # the mean of 3 repeats is more reliable than one


def test_noise_ceiling_needs_two_repeats():
    one = pd.DataFrame([{"architecture": f"a{i}", "repeat": 0, "truth": i} for i in range(10)])
    c = noise_ceiling(one)
    assert c.ceiling is None and "one repeat" in c.notes[0]


def test_design_preferences_on_a_case_worked_by_hand():
    # the proxy ranks the three unpooled networks first, the truth ranks them last; width is a tie for both
    archs = [f"a{i}" for i in range(7)]
    specs = {
        a: {"pool": "none" if i < 3 else "max", "width": [8, 128, 16][i % 3], "act": "relu"}
        for i, a in enumerate(archs)
    }
    scores = pd.DataFrame(
        {
            "architecture": archs,
            "proxy": "p",
            "score": [6, 5, 4, 3, 2, 1, 0],
            "truth": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, None],  # a6 has no truth: left out
        }
    )
    table = design_preferences(scores, specs).set_index(["axis", "value"])
    assert "act" not in table.index.get_level_values("axis")  # one value: nothing to compare
    none, pooled = table.loc[("pool", "none")], table.loc[("pool", "max")]
    assert none["architectures"] == 3 and pooled["architectures"] == 3
    assert none["proxy_rank"] == pytest.approx((6 + 5 + 4) / 6 / 3)
    assert none["truth_rank"] == pytest.approx((1 + 2 + 3) / 6 / 3)
    assert none["difference"] == pytest.approx(0.5) and pooled["difference"] == pytest.approx(-0.5)
    assert list(table.loc["width"].index) == ["8", "16", "128"]  # numbers in numeric order
    assert table.loc[("width", "8"), "proxy_rank"] == pytest.approx((6 + 3) / 6 / 2)


def test_top_k_interval_covers_the_population_top_10_rho():
    """Architectures drawn from a population (truth ~ N(0, 1), score = truth + noise): the nominal 95 %
    interval, top 10 re-selected in every resample, covers the population's top-10 ρ (Spearman among the
    architectures whose score is in the top 10/60 of the population) in at least 90 % of 200 seeded draws."""
    from nasproxy.report._stats import top_k_intervals

    rng = np.random.default_rng(123)
    truth = rng.standard_normal(400_000)
    score = truth + 0.8 * rng.standard_normal(len(truth))
    head = score >= np.quantile(score, 1 - 10 / 60)
    population = sps.spearmanr(score[head], truth[head]).statistic
    covered = 0
    for draw in range(200):
        r = np.random.default_rng(draw)
        t = r.standard_normal(60)
        s = t + 0.8 * r.standard_normal(60)
        interval, _ = top_k_intervals(s, t, 10, resamples=400, seed=draw)
        covered += interval.low <= population <= interval.high
    assert covered >= 180


def test_top_k_rows_re_select_inside_each_resample():
    from nasproxy.report._stats import top_k_spearman_rows

    # two resamples of architectures A..D (score, truth): A 0.9/1, B 0.5/2, C 0.7/3, D 0.1/4
    # drawn A, A, B, C: the top 2 are both draws of A, a constant pair: undefined
    # drawn C, B, D, B: the top 3 are C, B, B: scores 0.7, 0.5, 0.5 against truths 3, 2, 2: rho = 1
    scores = np.array([[0.9, 0.9, 0.5, 0.7], [0.7, 0.5, 0.1, 0.5]])
    truths = np.array([[1.0, 1.0, 2.0, 3.0], [3.0, 2.0, 4.0, 2.0]])
    assert np.isnan(top_k_spearman_rows(scores[:1], truths[:1], 2)[0])
    assert top_k_spearman_rows(scores[1:], truths[1:], 3)[0] == pytest.approx(1.0)
    # the original order's top 2 (A, C: truths 1, 3 at scores 0.9, 0.7) ranks in reverse
    assert top_k_spearman_rows(np.array([[0.9, 0.5, 0.7, 0.1]]), np.array([[1.0, 2, 3, 4]]), 2)[0] == -1.0
