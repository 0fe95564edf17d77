"""`nasproxy merge`: a study's trials from two journals (a GPU machine's and the committed one), each
architecture kept once."""

import optuna
import pytest
from click.testing import CliRunner

from nasproxy import NasproxyError
from nasproxy.cli import main
from nasproxy.search import SearchRequest, completed_architectures, plan_search, run_search
from nasproxy.search._merge import merge_studies
from nasproxy.search._storage import open_storage


def _search(storage, only, **kw):
    request = SearchRequest(
        space="tiny", proxy="params", dataset="mnist", holdout=50, storage=str(storage), only=only, device="cpu", **kw
    )
    run_search(request, progress=False)
    return plan_search(request)[0].study_name


def _done(storage, study):
    return completed_architectures(optuna.load_study(study_name=study, storage=open_storage(str(storage))))


def test_merge_keeps_each_architecture_once(env):
    from nasproxy.spaces import load_space

    ids = [c.arch_id for c in load_space("tiny").candidates()]
    gpu, committed = env / "gpu.journal", env / "committed.journal"
    study = _search(committed, tuple(ids[:5]))
    assert _search(gpu, tuple(ids[3:])) == study
    before = _done(committed, study)
    (merged,) = merge_studies(str(gpu), str(committed))
    assert (merged.study, merged.added, merged.already, merged.created) == (study, 3, 2, False)
    after = _done(committed, study)
    assert sorted(after) == sorted(ids)
    for arch in ids[3:5]:  # both had it: the destination's trial stays
        assert after[arch].datetime_start == before[arch].datetime_start
    for arch in ids[5:]:  # copied with the score and the attributes
        source = _done(gpu, study)[arch]
        assert after[arch].value == source.value and after[arch].user_attrs == source.user_attrs
    trials = optuna.load_study(study_name=study, storage=open_storage(str(committed))).get_trials()
    assert len([t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]) == len(ids)
    (again,) = merge_studies(str(gpu), str(committed))
    assert again.added == 0 and again.already == 5


def test_merge_creates_a_missing_study_and_refuses_another_protocol(env):
    gpu, empty = env / "gpu.journal", env / "new.journal"
    study = _search(gpu, None)
    result = CliRunner().invoke(main, ["merge", str(gpu), "--into", str(empty)])
    assert result.exit_code == 0, result.output
    assert f"{study} (new study): 8 architectures added, 0 already there" in result.output
    assert len(_done(empty, study)) == 8
    loaded = optuna.load_study(study_name=study, storage=open_storage(str(empty)))
    assert loaded.user_attrs == optuna.load_study(study_name=study, storage=open_storage(str(gpu))).user_attrs
    other = env / "other.journal"
    storage = open_storage(str(other))
    changed = optuna.create_study(study_name=study, storage=storage)
    changed.set_user_attr("protocol", {"proxy": "params", "epochs": 3})
    with pytest.raises(NasproxyError, match="another protocol"):
        merge_studies(str(gpu), str(other))
    result = CliRunner().invoke(main, ["merge", str(gpu), "--into", str(gpu)])
    assert result.exit_code == 2 and "--into is the storage being merged" in result.output
