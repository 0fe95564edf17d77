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
    run_search(request, workers=2 if sampler == "sweep" else 1, progress=False)
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
