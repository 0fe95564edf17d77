import math

import numpy as np
import pytest

from nasproxy import NasproxyError
from nasproxy.report import COLUMNS, StudyData, build_report


def test_report_rows_labels_costs_and_truth(make_study, truth):
    good = make_study(
        "s1",
        "ours",
        [0.1 * i for i in range(12)],
        protocol={"proxy_file": "aaaaaaaaaaaaaaaa", "proxy_images": 100},
        repeats=[[0.1 * i, 0.1 * i + 0.01] for i in range(12)],
        proxy_file={"wall_seconds": 50.0},
    )
    slower = make_study(
        "s2", "ours", [0.1 * i for i in range(12)], protocol={"proxy_file": "aaaaaaaaaaaaaaaa", "epochs": 50}
    )
    reverse = make_study("s3", "synflow", [-float(i) for i in range(12)], protocol={"epochs": 0, "zero_cost_batch": 64})
    report = build_report([good, slower, reverse, truth], resamples=200)
    table = report.table.set_index("proxy")
    assert list(report.table.columns) == COLUMNS
    # two protocols of one proxy are two rows, labelled by what differs
    assert set(table.index) == {"ours (epochs=100)", "ours (epochs=50)", "synflow"}
    row = table.loc["ours (epochs=100)"]
    assert row["spearman"] == pytest.approx(1.0) and row["images"] == 100 and row["repeats"] == 2
    assert row["seconds"] == pytest.approx(12 * 1.0 + 50.0) and row["condense_seconds"] == 50.0
    assert row["selected"] == "arch11" and row["regret"] == pytest.approx(0.0)
    assert row["repeat_spearman_mean"] == pytest.approx(1.0)
    assert table.loc["synflow", "spearman"] == pytest.approx(-1.0)  # signed, never abs()
    assert table.loc["synflow", "images"] == 64 and math.isnan(table.loc["synflow", "repeats"])
    assert "condensation time" in table.loc["ours (epochs=50)", "notes"]
    assert list(report.table["proxy"])[-1] == "synflow"  # sorted by Spearman, best first
    truth = report.truth
    assert truth.metric == "test" and truth.repeats == 2 and truth.ceiling.repeats == 2
    assert truth.convergence.half_epochs == 5 and truth.convergence.spearman == pytest.approx(1.0)


def test_no_ground_truth_is_a_clear_error(make_study):
    with pytest.raises(NasproxyError, match="no ground truth"):
        build_report([make_study("s1", "ours", [0.1 * i for i in range(12)])], resamples=200)


def test_two_ground_truths_need_a_choice(make_study, truth):
    other = truth
    other = StudyData(**{**other.__dict__, "name": "gt2"})
    with pytest.raises(NasproxyError, match="pick one with truth STUDY"):
        build_report([truth, other, make_study("s1", "ours", list(range(12)))], resamples=200)
    report = build_report([truth, other, make_study("s1", "ours", list(range(12)))], truth="gt2", resamples=200)
    # the other ground truth is no proxy row: the table compares proxies with the chosen truth
    assert report.truth.study == "gt2" and set(report.table["proxy"]) == {"ours"}
    assert [s["study"] for s in report.studies] == ["gt2", "s1"]


def test_truth_without_test_scores_ranks_by_validation(make_study):
    truth = make_study("gt", "full", [0.5 + 0.01 * i for i in range(12)], repeats=[[0.5, 0.5]] * 12)
    report = build_report([truth, make_study("s1", "ours", list(range(12)))], resamples=200)
    assert report.truth.metric == "validation"


def test_a_report_leaves_a_folders_own_readme_alone_when_asked(tmp_path, make_study, truth):
    from nasproxy.report import write_report

    report = build_report([make_study("s1", "ours", [0.1 * i for i in range(12)]), truth], resamples=100)
    (tmp_path / "README.md").write_text("the experiment's own\n")
    written = write_report(report, tmp_path, readme=False)
    assert (tmp_path / "README.md").read_text() == "the experiment's own\n"
    assert (tmp_path / "table.csv") in written and (tmp_path / "README.md") not in written
    write_report(report, tmp_path)
    assert (tmp_path / "README.md").read_text().startswith("# nasproxy report")


def test_a_study_with_no_architecture_done_yet_is_a_row_of_zero_not_a_crash(tmp_path, make_study, truth):
    # a proxy whose search has just started: the report made meanwhile shows it as not begun
    from nasproxy.report import write_report

    done = make_study("s1", "ours", [0.1 * i for i in range(12)], repeats=[[0.1 * i, 0.1 * i] for i in range(12)])
    started = make_study("s2", "dm", [])
    report = build_report([done, started, truth], resamples=200)
    row = report.table.set_index("proxy").loc["dm"]
    assert row["architectures"] == 0 and row["with_truth"] == 0 and math.isnan(row["spearman"])
    assert "no architecture" in row["notes"]
    assert [c.proxy for c in report.comparisons] == ["dm"] and report.comparisons[0].difference is None
    written = write_report(report, tmp_path / "out")
    assert (tmp_path / "out" / "table.csv") in written


def test_a_report_over_a_listed_subset_scores_only_those_architectures(tmp_path, make_study, truth):
    # right on the first six architectures, reversed on the last six: the subset decides the answer
    from nasproxy.report import write_report

    scores = [float(i) for i in range(6)] + [100.0 - i for i in range(6, 12)]
    proxy = make_study("s1", "ours", scores, repeats=[[s, s] for s in scores], seconds=2.0)
    whole = build_report([proxy, truth], resamples=200).table.set_index("proxy").loc["ours"]
    archs = list(truth.trials["architecture"])
    first = build_report([proxy, truth], resamples=200, architectures=archs[:6])
    last = build_report([proxy, truth], resamples=200, architectures=archs[6:] + archs[6:7])
    assert 0 < whole["spearman"] < 1 and whole["with_truth"] == 12
    row = first.table.set_index("proxy").loc["ours"]
    assert row["spearman"] == pytest.approx(1.0) and row["architectures"] == 6 and row["with_truth"] == 6
    assert row["seconds"] == pytest.approx(6 * 2.0) and row["selected"] == "arch05"
    assert last.table.set_index("proxy").loc["ours", "spearman"] == pytest.approx(-1.0)
    assert last.architectures == tuple(archs[6:])  # a repeated id counts once
    write_report(first, tmp_path, readme=False)
    assert '"architectures": [' in (tmp_path / "report.json").read_text()
    assert "Only the 6 architectures" in (tmp_path / "table.md").read_text()
    with pytest.raises(NasproxyError, match="none of the 2 listed architectures"):
        build_report([proxy, truth], resamples=200, architectures=["nope", "other"])


def test_the_augmentation_control_is_labelled_by_what_differs(make_study, truth):
    plain = make_study("r1", "random", [0.1 * i for i in range(12)], protocol={"epochs": 100, "repeats": 5})
    augmented = make_study(
        "r2", "random", [0.1 * i for i in range(12)],
        protocol={"epochs": 100, "repeats": 5, "augment": "color_crop_cutout_flip_scale_rotate"},
    )  # fmt: skip
    report = build_report([truth, plain, augmented], resamples=200)
    assert set(report.table["proxy"]) == {
        "random (no augmentation)",
        "random (with color_crop_cutout_flip_scale_rotate)",
    }


def _truth_at_half(half_quality, *, noise: float = 0.0):
    """A ground truth of 12 architectures whose two repeats end at 0.5 + 0.03 i (each off by ``noise`` in
    turn) and whose validation ranking half-way is ``half_quality``."""
    from tests.report.conftest import make_study_data

    end = [[0.5 + 0.03 * i + noise * (-1) ** i, 0.5 + 0.03 * i - noise * (-1) ** i] for i in range(12)]
    half = [[q, q] for q in half_quality]
    return make_study_data("gt", "full", [sum(e) / 2 for e in end], protocol={"epochs": 8}, repeats=end, half=half)


def test_a_ground_truth_is_settled_unless_half_way_ranks_worse_than_its_networks_agree(make_study):
    proxy = make_study("s1", "ours", list(range(12)))
    # half-way ranks exactly as the end, networks agree: settled
    same = build_report([_truth_at_half([0.4 + 0.03 * i for i in range(12)]), proxy], resamples=200)
    conv = same.truth.convergence
    assert conv.half_epochs == 4 and conv.spearman == pytest.approx(1.0) and conv.repeat_vs_repeat == pytest.approx(1.0)
    assert conv.versus_repeats == pytest.approx(0.0) and conv.settled is True
    # half-way ranks in reverse over the top half while the networks agree perfectly: still changing
    changed = [0.4 + 0.03 * (i if i < 6 else 17 - i) for i in range(12)]
    changing = build_report([_truth_at_half(changed), proxy], resamples=200).truth.convergence
    assert changing.versus_repeats == pytest.approx(changing.spearman - 1.0)
    assert changing.versus_repeats_ci.high < 0 and changing.settled is False
    # the same half-way ranking against networks that disagree as much: within their noise, settled
    noisy = build_report([_truth_at_half(changed, noise=0.07), proxy], resamples=200).truth.convergence
    assert noisy.repeat_vs_repeat < 0.9 and noisy.versus_repeats_ci.low < 0 <= noisy.versus_repeats_ci.high
    assert noisy.settled is True


def test_half_way_against_repeats_is_a_paired_difference():
    from nasproxy.report._convergence import half_way_against_repeats

    rng = np.random.default_rng(0)
    quality = np.arange(40.0)
    networks = quality[:, None] + rng.normal(0, 4, (40, 3))  # three noisy networks of one ranking
    # half-way as noisy as one network: the difference holds 0
    _, diff, ci = half_way_against_repeats(
        quality + rng.normal(0, 4, 40), networks.mean(1), networks, resamples=500, seed=0
    )
    assert ci.low < 0 < ci.high
    # half-way unrelated to the end: far below the networks' agreement
    agreement, diff, ci = half_way_against_repeats(
        rng.permutation(quality), networks.mean(1), networks, resamples=500, seed=0
    )
    assert 0.8 < agreement < 1 and diff < -0.5 and ci.high < 0
