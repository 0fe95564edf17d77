"""Paired comparisons of two proxies (nasproxy.report._compare): cases worked by hand, only the architectures
both scored, and why pairing matters (an interval far tighter than the two separate ones)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from nasproxy import NasproxyError
from nasproxy.report import bootstrap_intervals, build_report, paired_comparisons


def _frame(truth, **proxies):
    rows = [
        {"architecture": f"a{i:02d}", "proxy": name, "score": s, "truth": truth[i]}
        for name, scores in proxies.items()
        for i, s in enumerate(scores)
        if s is not None
    ]
    return pd.DataFrame(rows)


def test_perfect_against_reversed_and_against_itself():
    truth = list(range(10))
    frame = _frame(truth, good=truth, reverse=[-t for t in truth], same=truth)
    reverse, same = paired_comparisons(frame, "good", resamples=200)
    assert (reverse.proxy, reverse.architectures) == ("reverse", 10)
    assert reverse.spearman_reference == pytest.approx(1) and reverse.spearman_proxy == pytest.approx(-1)
    assert reverse.difference == pytest.approx(2) and reverse.share_better == 1.0
    assert reverse.interval.low == pytest.approx(2) and reverse.interval.high == pytest.approx(2)
    # the same ranking: no difference in any resample, and never "better"
    assert same.difference == 0 and same.share_better == 0 and (same.interval.low, same.interval.high) == (0, 0)


def test_only_architectures_both_proxies_scored_with_a_truth_count():
    rng = np.random.default_rng(0)
    truth = list(rng.normal(size=30))
    truth[3] = np.nan  # no ground truth for a03
    ref = list(rng.normal(size=30))
    partial = [s if i % 2 else None for i, s in enumerate(rng.normal(size=30))]  # scored the odd ones only
    (c,) = paired_comparisons(_frame(truth, ref=ref, partial=partial), "ref", resamples=300)
    kept = [i for i in range(30) if i % 2 and i != 3]
    assert c.architectures == len(kept) == 14
    want_ref = sps.spearmanr([ref[i] for i in kept], [truth[i] for i in kept]).statistic
    want_other = sps.spearmanr([partial[i] for i in kept], [truth[i] for i in kept]).statistic
    assert c.spearman_reference == pytest.approx(want_ref) and c.spearman_proxy == pytest.approx(want_other)
    assert c.difference == pytest.approx(want_ref - want_other)
    assert c.interval.low <= c.difference <= c.interval.high


def test_pairing_measures_a_small_difference_that_separate_intervals_cannot():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=40)
    shared = truth + rng.normal(scale=1.0, size=40)  # both proxies make the same big mistakes...
    better = shared + rng.normal(scale=0.05, size=40) + 0.3 * truth  # ...and one leans a little more on truth
    (c,) = paired_comparisons(_frame(list(truth), better=list(better), worse=list(shared)), "better")
    separate = [bootstrap_intervals(p, truth)[0] for p in (better, shared)]
    assert c.interval.low > 0 and c.share_better > 0.975  # better, with 95 % confidence
    assert separate[0].low < separate[1].high  # while the separate intervals overlap
    assert c.interval.high - c.interval.low < 0.6 * min(s.high - s.low for s in separate)


def test_too_few_common_architectures_is_said_not_guessed():
    truth = list(range(10))
    (c,) = paired_comparisons(_frame(truth, ref=truth, few=[0, 1, 2] + [None] * 7), "ref")
    assert c.difference is None and c.interval is None and "only 3 architectures" in c.notes


def test_report_compares_ours_by_default_and_takes_another_reference(make_study, truth):
    ours = make_study("s1", "ours", [0.1 * i for i in range(12)])
    synflow = make_study("s2", "synflow", [float((i * 7) % 12) for i in range(12)], protocol={"epochs": 0})
    params = make_study("s3", "params", [-float(i) for i in range(12)], protocol={"epochs": 0})
    report = build_report([synflow, ours, params, truth], resamples=200)
    assert [(c.reference, c.proxy) for c in report.comparisons] == [("ours", "synflow"), ("ours", "params")]
    assert report.comparisons[1].difference == pytest.approx(2.0)
    other = build_report([synflow, ours, params, truth], resamples=200, versus="params")
    assert [c.proxy for c in other.comparisons] == ["ours", "synflow"]
    with pytest.raises(NasproxyError, match="versus.*'dm' is not a proxy of this report; pass one of: ours"):
        build_report([ours, params, truth], resamples=200, versus="dm")


def test_verdicts_follow_the_paired_interval():
    from nasproxy.report._compare import verdict
    from nasproxy.report._stats import Interval

    assert verdict(Interval(0.01, 0.3)) == "better"
    assert verdict(Interval(-0.3, -0.02)) == "worse"
    assert verdict(Interval(-0.1, 0.2)) == "level" and verdict(Interval(0.0, 0.2)) == "level"
    assert verdict(None) == ""


def test_verdicts_on_constructed_pairs():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal(60)
    close = truth + 0.2 * rng.standard_normal(60)
    rows = [
        *({"architecture": f"a{i}", "proxy": "close", "score": close[i], "truth": truth[i]} for i in range(60)),
        *({"architecture": f"a{i}", "proxy": "same", "score": close[i], "truth": truth[i]} for i in range(60)),
        *(
            {"architecture": f"a{i}", "proxy": "noise", "score": noise, "truth": truth[i]}
            for i, noise in enumerate(rng.standard_normal(60))
        ),
    ]
    by_proxy = {c.proxy: c for c in paired_comparisons(pd.DataFrame(rows), "close", resamples=300)}
    assert by_proxy["noise"].verdict == "better" and by_proxy["same"].verdict == "level"
    assert by_proxy["same"].difference == 0 and by_proxy["same"].top10_difference == 0
    assert by_proxy["noise"].top10_interval is not None
    from nasproxy.report._compare import comparisons_frame

    frame = comparisons_frame(paired_comparisons(pd.DataFrame(rows), "close", resamples=300))
    assert frame["proxy"].tolist() == ["same", "noise"] and frame["verdict"].tolist() == ["level", "better"]
