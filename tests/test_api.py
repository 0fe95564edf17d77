"""The Python API (nasproxy.search(...), nasproxy.report(...)): the commands' own code path, typed results,
and files written only where the caller names them."""

from pathlib import Path

import pytest
from click.testing import CliRunner

import nasproxy
from nasproxy import _api
from nasproxy.cli import main

TINY = dict(space="tiny", proxy="params", dataset="mnist", holdout=50, device="cpu")


@pytest.fixture
def env(idx_root, tmp_path, monkeypatch):
    work = tmp_path / "work"  # apart from the dataset's folder, so that what a call writes shows
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("NASPROXY_DATA", str(idx_root))
    monkeypatch.setenv("NASPROXY_CACHE", str(tmp_path / "cache"))
    return work


def test_a_dry_run_sees_the_plan_and_writes_nothing(env):
    seen = []
    result = nasproxy.search(storage=env / "s.journal", dry_run=True, on_plan=seen.append, **TINY)
    (plan,) = seen
    assert result.plan is plan and len(plan.targets) == 8 and plan.device_name.startswith("cpu")
    assert (result.done, result.total, result.finished, result.csv) == (0, 8, False, None)
    assert result.trials.empty and list(env.iterdir()) == []


def test_a_spent_budget_is_a_result_and_the_same_call_continues(env):
    journal = env / "s.journal"
    first = nasproxy.search(storage=journal, hours=1e-9, **TINY)
    assert not first.finished and first.done <= 1
    assert first.budget_spent.startswith("the 1e-09-hour budget ran out")
    second = nasproxy.search(storage=journal, csv=env / "out.csv", **TINY)
    assert second.finished and second.budget_spent is None and second.csv == env / "out.csv"
    values = list(second.trials["value"])
    assert len(values) == 8 and values == sorted(values, reverse=True)  # best first
    assert sorted(p.name for p in env.iterdir()) == ["out.csv", "s.journal"]


def test_a_budget_left_over_is_not_called_spent_when_the_rest_trains_elsewhere(env):
    import optuna

    from nasproxy.search._storage import open_storage
    from tests._helpers import claim

    journal = env / "s.journal"
    first = nasproxy.search(storage=journal, sample=1, sample_seed=0, **TINY)
    (arch,) = first.plan.targets
    others = [c.arch_id for c in nasproxy.load_space("tiny").candidates() if c.arch_id != arch][:2]
    study = optuna.load_study(study_name=first.plan.study_name, storage=open_storage(str(journal)))
    claim(study.ask(), others[0])  # another command trains it now (a live process: this one)
    result = nasproxy.search(storage=journal, archs=[arch, *others], hours=1, **TINY)
    assert (result.done, result.total, result.finished) == (2, 3, False)
    assert result.budget_spent is None


def test_the_commands_call_the_api(env, monkeypatch):
    calls = []

    def recording(function):
        def call(**options):
            calls.append((function.__name__, options))
            return function(**options)

        return call

    monkeypatch.setattr(_api, "search", recording(_api.search))
    monkeypatch.setattr(_api, "report", recording(_api.report))
    common = ["--space", "tiny", "--dataset", "mnist", "--holdout", "50", "--storage", "s.journal", "-q"]
    for proxy in ("params", "synflow"):
        result = CliRunner().invoke(main, ["search", "--proxy", proxy, *common], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert [(name, o["proxy"], o["csv"]) for name, o in calls] == [
        ("search", "params", "default"),
        ("search", "synflow", "default"),
    ]
    assert calls[0][1]["dataset"] == "mnist" and calls[0][1]["holdout"] == 50
    assert len(list((env / "results" / "search").glob("*.csv"))) == 2  # the command asks for the default export

    args = ["report", "--space", "tiny", "--dataset", "mnist", "--storage", "s.journal", "--truth", "x"]
    result = CliRunner().invoke(main, [*args, "--out", "rep"])
    assert result.exit_code == 2 and "x" in result.output  # no such ground truth: the API's error, one line
    assert calls[-1][0] == "report" and calls[-1][1]["storages"] == ("s.journal",)
    assert Path(calls[-1][1]["out"]).resolve() == env / "rep" and calls[-1][1]["truth"] == "x"
