"""Trials that Optuna's own tools read: a sweep's trials carry their architecture's axes as params."""

import optuna
import pytest

from nasproxy.search import SearchRequest, completed_architectures, plan_search, run_search
from nasproxy.search._storage import open_storage
from nasproxy.spaces import load_space


@pytest.mark.parametrize("sampler", ["sweep", "tpe"])
def test_trials_carry_the_axes_as_params_and_importance_runs(env, sampler):
    request = SearchRequest(
        space="tiny", proxy="params", dataset="mnist", holdout=50, storage=str(env / "s.journal"), device="cpu",
        sampler=sampler, trials=6,
    )  # fmt: skip
    run_search(request, progress=False)
    name = plan_search(request)[0].study_name
    study = optuna.load_study(study_name=name, storage=open_storage(str(env / "s.journal")))
    space = load_space("tiny")
    done = completed_architectures(study)
    assert len(done) == (8 if sampler == "sweep" else 6)
    for arch, trial in done.items():
        spec = space.get(arch).spec
        assert trial.params == {axis: spec[axis] for axis in space.axes}, arch
        assert set(trial.distributions) == set(space.axes)
    frame = study.trials_dataframe()
    assert {f"params_{axis}" for axis in space.axes} <= set(frame.columns)
    importances = optuna.importance.get_param_importances(study)
    assert set(importances) <= set(space.axes) and importances
    assert sum(importances.values()) == pytest.approx(1.0)


def test_a_journal_from_before_params_is_upgraded_and_reports_the_same(env, monkeypatch):
    from click.testing import CliRunner

    from nasproxy.cli import main
    from nasproxy.search import _worker

    journal = env / "old.journal"
    with monkeypatch.context() as before_params:
        before_params.setattr(_worker, "record_params", lambda *a, **k: None)  # how sweeps wrote before
        for proxy in ("params", "full"):
            request = SearchRequest(
                space="tiny", proxy=proxy, dataset="mnist", holdout=50, storage=str(journal), device="cpu",
                epochs=1 if proxy == "full" else None, repeats=2 if proxy == "full" else None, backend="aten",
            )  # fmt: skip
            run_search(request, progress=False)
    runner = CliRunner()
    report = ["report", "--dataset", "mnist", "--space", "tiny", "--storage", str(journal), "--bootstrap", "200"]
    assert runner.invoke(main, [*report, "--out", "before"]).exit_code == 0
    names = optuna.get_all_study_names(open_storage(str(journal)))
    old_trials = {n: optuna.load_study(study_name=n, storage=open_storage(str(journal))).trials for n in names}
    assert all(not t.params for trials in old_trials.values() for t in trials)
    result = runner.invoke(main, ["studies", "--storage", str(journal), "--add-params"])
    assert result.exit_code == 0 and "16 trials given their axes as params" in result.output, result.output
    assert (env / "old.journal.before-params").exists()
    space = load_space("tiny")
    for name, trials in old_trials.items():
        new = optuna.load_study(study_name=name, storage=open_storage(str(journal))).trials
        assert [(t.number, t.state, t.values, t.user_attrs) for t in new] == [
            (t.number, t.state, t.values, t.user_attrs) for t in trials
        ]
        assert all(t.params == {a: t.user_attrs["spec"][a] for a in space.axes} for t in new)
    assert runner.invoke(main, [*report, "--out", "after"]).exit_code == 0
    for produced in sorted((env / "before").iterdir()):
        if produced.suffix in (".csv", ".md", ".json"):
            assert produced.read_bytes() == (env / "after" / produced.name).read_bytes(), produced.name
