import os
import re
import signal
import socket
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest

from nasproxy import CondensedSet, NasproxyError, condense
from nasproxy.search import SearchRequest, completed_architectures, plan_search, run_search
from nasproxy.search._storage import open_storage
from tests._helpers import uses_the_postgresql_server


@pytest.fixture
def search_env(small_mnist, idx_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NASPROXY_DATA", str(idx_root))
    monkeypatch.setenv("NASPROXY_CACHE", str(tmp_path / "cache"))
    proxy_path = tmp_path / "random.pt"
    condense(small_mnist, method="random", ipc=2, seed=0).save(proxy_path)
    return {"proxy_file": str(proxy_path), "data_root": str(idx_root), "tmp": tmp_path}


def _request(env, **kw):
    base = dict(
        space="tiny",
        proxy="random",
        proxy_file=env["proxy_file"],
        dataset="mnist",
        holdout=50,
        data_root=env["data_root"],
        epochs=2,
        repeats=2,
        device="cpu",
    )
    return SearchRequest(**{**base, **kw})


def _study(plan):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=plan.study_name, storage=open_storage(plan.storage_url))


def _completed_per_arch(study):
    counts = {}
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        counts[t.user_attrs["arch_id"]] = counts.get(t.user_attrs["arch_id"], 0) + 1
    return counts


def test_search_records_everything_and_resumes_without_redoing(search_env):
    req = _request(search_env)
    csv = run_search(req, progress=False)
    plan, _ = plan_search(req)
    study = _study(plan)
    assert plan.done == 8 and _completed_per_arch(study) == {a: 1 for a in plan.targets}
    t = next(iter(completed_architectures(study).values()))
    for key in (
        "spec",
        "val_accs",
        "seeds",
        "seconds",
        "params",
        "flops",
        "device",
        "protocol_hash",
        "nasproxy_version",
    ):
        assert key in t.user_attrs
    assert len(t.user_attrs["val_accs"]) == 2 and t.value == pytest.approx(sum(t.user_attrs["val_accs"]) / 2)
    assert "test_accs" not in t.user_attrs  # ranking needs the validation images only (the paper's protocol)
    frame = pd.read_csv(csv)
    assert len(frame) == 8 and frame["value"].is_monotonic_decreasing
    run_search(req, progress=False)  # nothing left: no new trials
    assert len(_study(plan).trials) == len(study.trials)


def test_a_search_opens_its_storage_once(search_env, monkeypatch):
    # planning, working, the export and the result had each opened it again: on a database, a new engine
    # and its connections each time
    import nasproxy
    from nasproxy.search import _storage

    opened, real = [], _storage.open_storage
    monkeypatch.setattr(_storage, "open_storage", lambda url, **kw: opened.append(url) or real(url, **kw))
    storage = str(search_env["tmp"] / "once.journal")
    result = nasproxy.search(
        space="tiny", proxy="random", proxy_file=search_env["proxy_file"], dataset="mnist", holdout=50, epochs=2,
        repeats=2, sample=2, device="cpu", storage=storage, csv="default",
    )  # fmt: skip
    assert result.finished and opened == [storage]


def test_one_worker_trains_the_costliest_architectures_first(search_env):
    # the longest trainings start first, so none of them ends a sweep alone on one worker
    req = _request(search_env, epochs=1, repeats=1)
    run_search(req, progress=False)
    trials = sorted(completed_architectures(_study(plan_search(req)[0])).values(), key=lambda t: t.number)
    flops = [t.user_attrs["flops"] for t in trials]
    assert len(set(flops)) > 2 and flops == sorted(flops, reverse=True)


def test_the_costliest_first_follows_the_plans_cost_model(search_env):
    import random

    from nasproxy.search._estimate import Estimate
    from nasproxy.search._worker import _next_architecture

    plan, ctx = plan_search(_request(search_env, epochs=1, repeats=1))
    todo = plan.targets
    by_flops = max(todo, key=ctx.flops)
    assert todo[0] != by_flops
    ctx.price = None  # no fitted model: FLOPs decide
    assert _next_architecture(ctx, todo, 0, random.Random(0)) == by_flops
    ctx.price = Estimate(1.0, 1.0, 1.0, 3, coef=(0.0, 0.0, 5.0))  # a model that prices them all alike
    assert _next_architecture(ctx, todo, 0, random.Random(0)) == todo[0]
    ctx.price = Estimate(1.0, 1.0, 1.0, 3, coef=(0.0, 1.0, 0.0))  # one that prices by activations alone
    assert _next_architecture(ctx, todo, 0, random.Random(0)) == max(todo, key=ctx.activations)


def test_a_restart_resumes_checkpointed_architectures_before_starting_new_ones(search_env):
    import random

    from nasproxy.search._worker import _next_architecture, _resumable_first

    plan, ctx = plan_search(_request(search_env, epochs=1, repeats=1))
    ctx.price = None  # worker 0 ranks by FLOPs
    todo = plan.targets
    cheapest, cheaper = sorted(todo, key=ctx.flops)[:2]
    folder = search_env["tmp"] / "cache" / "checkpoints" / plan.study_name
    assert _resumable_first(todo, plan.study_name) == todo  # nothing interrupted: the whole list
    folder.mkdir(parents=True)
    for arch in (cheapest, cheaper):
        (folder / f"{arch}.pt").write_bytes(b"")
    for worker in (0, 1, 2):  # the costliest-first worker and the random ones alike
        picked = _next_architecture(ctx, _resumable_first(todo, plan.study_name), worker, random.Random(worker))
        assert picked in {cheapest, cheaper}
    assert _next_architecture(ctx, _resumable_first(todo, plan.study_name), 0, random.Random(0)) == max(
        (cheapest, cheaper), key=ctx.flops
    )


def test_training_free_scores_keep_the_order_of_the_search(search_env):
    req = _request(search_env, proxy="params", proxy_file=None, epochs=None, repeats=1)
    run_search(req, progress=False)
    plan, _ = plan_search(req)
    trials = sorted(completed_architectures(_study(plan)).values(), key=lambda t: t.number)
    assert [t.user_attrs["arch_id"] for t in trials] == plan.targets


def test_several_workers_number_from_the_costliest_first_one_and_rank_by_the_plans_price(search_env, monkeypatch):
    # numbered from 1, the workers of one command had all drawn at random: none started the longest first
    import multiprocessing

    from nasproxy.search._estimate import Estimate

    started, spawn = [], multiprocessing.get_context("spawn")

    class Recording:  # records what each worker is given; the process itself does nothing
        def Process(self, target, args, daemon):
            started.append(args)
            return spawn.Process(target=os.getpid, daemon=daemon)

    monkeypatch.setattr(multiprocessing, "get_context", lambda method: Recording())
    req = _request(search_env, storage=str(search_env["tmp"] / "numbered.journal"))
    plan, ctx = plan_search(req)
    ctx.price = Estimate(1.0, 1.0, 1.0, 3, coef=(0.0, 1.0, 0.0))
    run_search(req, workers=3, progress=False, plan=plan, ctx=ctx, csv=None)
    assert sorted(worker for _, worker, *_ in started) == [0, 1, 2]
    assert all(price == ctx.price for *_, price, _ in started)
    assert all(counts == ctx.counts() and len(counts[0]) == 8 for *_, counts in started)  # not counted again


def test_a_spawned_worker_does_not_check_the_space_its_command_checked(search_env, monkeypatch):
    """Checking every architecture of paper720, and counting their FLOPs, costs a process seconds; the command
    that spawns workers has done both for them."""
    from nasproxy.search import _worker
    from nasproxy.spaces import SearchSpace

    checks, worked = [], []
    check = SearchSpace.validate
    monkeypatch.setattr(SearchSpace, "validate", lambda self, **kw: checks.append(self.name) or check(self, **kw))
    monkeypatch.setattr(_worker, "work", lambda ctx, targets, worker: worked.append((ctx, worker)))
    req = _request(search_env, storage=str(search_env["tmp"] / "spawned.journal"))
    plan, ctx = plan_search(req)
    assert checks == ["tiny"]  # the command's
    _worker._worker_main(req, 1, plan.targets, None, ctx.counts())
    ((own, worker),) = worked
    assert checks == ["tiny"] and worker == 1
    assert own.counts() == ctx.counts() and len(own.counts()[0]) == 8  # nor count what the command counted


@pytest.mark.slow
def test_candidates_in_flight_together_score_what_they_score_one_after_the_other(search_env):
    # two worker processes sharing one journal and one device (as --devices cuda:0,cuda:0 on a GPU), against one
    sequential = _request(search_env, storage=str(search_env["tmp"] / "one.journal"), threads=1)
    together = _request(search_env, storage=str(search_env["tmp"] / "two.journal"), threads=1, devices=("cpu", "cpu"))
    run_search(sequential, progress=False)
    run_search(together, workers=2, progress=False)
    one = {a: t.value for a, t in completed_architectures(_study(plan_search(sequential)[0])).items()}
    study = _study(plan_search(together)[0])
    two = completed_architectures(study)
    assert {a: t.value for a, t in two.items()} == one
    assert _completed_per_arch(study) == {a: 1 for a in one}  # each one once
    assert {t.user_attrs["device"] for t in two.values()} == {"cpu"}


@pytest.fixture
def postgres_url():
    url = os.environ.get("NASPROXY_TEST_POSTGRES")
    if not url:
        pytest.skip("set NASPROXY_TEST_POSTGRES to a PostgreSQL URL (.ci/run starts a server and sets it)")
    return url


def _race_on_a_fresh_database(postgres_url, data_root: str, tmp_path, processes: int = 4) -> list[tuple[int, str]]:
    """``processes`` searches that open one fresh PostgreSQL database at the same instant: they are forked from
    this process (their imports done, so that none is seconds ahead of another) and a barrier releases them
    together into ``nasproxy search``. Returns each one's exit status and what it printed."""
    import multiprocessing

    import alembic.migration  # noqa: F401 - what opening a database imports, imported once before the fork
    import optuna.storages._rdb.storage  # noqa: F401
    import psycopg

    import nasproxy.cli  # noqa: F401
    from nasproxy.spaces import load_space

    base, _, _ = postgres_url.rpartition("/")
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    db = f"nasproxy_race_{os.getpid()}_{time.time_ns()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
    url = f"{base}/{db}"
    args = ["search", "--space", "tiny", "--proxy", "params", "--dataset", "mnist", "--holdout", "50"]
    args += ["--storage", url, "--device", "cpu", "-q"]
    load_space("tiny").validate(channels=1, num_classes=10, image_size=(28, 28))  # its first meta tensors too
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(processes)
    logs = [tmp_path / f"race-{i}.txt" for i in range(processes)]
    procs = [ctx.Process(target=_race_one, args=(barrier, args, data_root, log)) for log in logs]
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=120)
        results = [(proc.exitcode, log.read_text() if log.exists() else "") for proc, log in zip(procs, logs)]
        if all(code == 0 for code, _ in results):
            storage = open_storage(url)
            (name,) = optuna.get_all_study_names(storage)
            per_arch = _completed_per_arch(optuna.load_study(study_name=name, storage=storage))
            assert per_arch == {arch: 1 for arch in per_arch} and len(per_arch) == 8
            storage.engine.dispose()
        return results
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def _race_one(barrier, args: list[str], data_root: str, log) -> None:
    import torch

    from nasproxy.cli import main

    # one thread: the parent's OpenMP threads do not exist in a forked child, so it must not ask for them
    torch.set_num_threads(1)
    os.environ.update(NASPROXY_DATA=data_root, OMP_NUM_THREADS="1")
    sys.stdout = sys.stderr = open(log, "w", buffering=1)  # noqa: SIM115 - the process exits with it open
    barrier.wait(timeout=60)
    main(args)  # exits with the command's status


@pytest.mark.slow
@uses_the_postgresql_server
def test_workers_started_together_on_an_empty_postgresql_database_all_finish(search_env, postgres_url, tmp_path):
    """Processes on several machines may open one fresh database at the same instant: all used to race to
    create Optuna's tables and then the study, and all but one lost with a unique-key error."""
    results = _race_on_a_fresh_database(postgres_url, search_env["data_root"], tmp_path)
    assert all(code == 0 for code, _ in results), results


@pytest.mark.slow
@uses_the_postgresql_server
def test_the_race_test_loses_the_race_without_the_retry(search_env, postgres_url, tmp_path, monkeypatch):
    """The test above can fail: without the retry, the processes it releases together lose the race."""
    from nasproxy.search import _storage

    monkeypatch.setattr(_storage, "retry_on_race", lambda fn, url, **_: fn())
    # a race is sometimes won by luck, all four processes finishing (3 races of 20 here): up to four races,
    # so that this test fails by chance about once in 2,000 runs rather than once in six
    for _ in range(4):
        results = _race_on_a_fresh_database(postgres_url, search_env["data_root"], tmp_path)
        lost = [text for code, text in results if code != 0]
        if lost:
            break
    assert lost, results
    assert all("Traceback" not in text and ("already exists" in text or "duplicate key" in text) for text in lost)


@pytest.mark.slow
def test_sigkilled_search_finishes_on_rerun_without_losing_trials(search_env, monkeypatch):
    from optuna.storages.journal import JournalFileSymlinkLock

    # a kill that lands inside an append leaves the journal's lock taken; the rerun breaks it once it has not
    # changed for Optuna's grace period, 30 s by default, shortened here (about 1 run in 4 waited it out)
    monkeypatch.setattr(JournalFileSymlinkLock.__init__, "__defaults__", (3,))
    tmp = search_env["tmp"]
    storage = str(tmp / "killed.journal")
    cmd = [
        sys.executable,
        "-m",
        "nasproxy.cli",
        "search",
        "--space",
        "tiny",
        "--proxy",
        "random",
        "--proxy-file",
        search_env["proxy_file"],
        "--dataset",
        "mnist",
        "--holdout",
        "50",
        "--epochs",
        "30",
        "--repeats",
        "2",
        "--storage",
        storage,
        "--device",
        "cpu",
        "-q",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp, start_new_session=True)
    req = _request(search_env, storage=storage, epochs=30)
    deadline = time.time() + 240
    first = {}
    while time.time() < deadline:
        time.sleep(0.5)
        if os.path.exists(storage):
            try:
                first = {a: t.number for a, t in completed_architectures(_study_by_name(storage)).items()}
            except KeyError:
                continue
            if len(first) >= 2:
                break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= len(first) < 8, "the search should have been killed mid-run"
    run_search(req, progress=False)  # the same search again, here: the killed process's claims are dead
    plan, _ = plan_search(req)
    study = _study(plan)
    after = {a: t.number for a, t in completed_architectures(study).items()}
    assert _completed_per_arch(study) == {a: 1 for a in plan.targets}
    assert all(after[a] == n for a, n in first.items())  # finished trials were kept, not redone


def _study_by_name(storage):
    summaries = optuna.get_all_study_summaries(open_storage(storage))
    return optuna.load_study(study_name=summaries[0].study_name, storage=open_storage(storage))


def test_early_stopping_full_and_training_free_proxies(search_env):
    es = run_search(_request(search_env, proxy="early-stopping", proxy_file=None), progress=False)
    plan, ctx = plan_search(_request(search_env, proxy="early-stopping", proxy_file=None))
    # budget of a 10-images-per-class proxy: 2 epochs x 1 step of 100 images
    assert ctx.protocol.proxy_images == 100 and len(pd.read_csv(es)) == 8
    full = pd.read_csv(
        run_search(_request(search_env, proxy="full", repeats=1, epochs=1, proxy_file=None), progress=False)
    )
    assert len(full) == 8 and full["value"].between(0, 1).all()
    assert full["test_mean"].between(0, 1).all()  # the ground truth scores the test set by default
    for name in ("synflow", "naswot", "snip", "grad-norm", "params"):
        frame = pd.read_csv(run_search(_request(search_env, proxy=name, proxy_file=None), progress=False))
        assert len(frame) == 8 and frame["value"].notna().all(), name
        if name == "params":
            assert frame.sort_values("value")["params"].is_monotonic_increasing


def test_only_top_k_of_earlier_searches(search_env):
    from nasproxy.search import top_architectures

    csv = run_search(_request(search_env), progress=False)
    top = top_architectures([str(csv)], 3, dataset="mnist", space="tiny")
    assert len(top) == 3
    run_search(
        _request(search_env, proxy="full", repeats=1, epochs=1, proxy_file=None, only=tuple(top)), progress=False
    )
    plan, _ = plan_search(_request(search_env, proxy="full", repeats=1, epochs=1, proxy_file=None, only=tuple(top)))
    assert set(completed_architectures(_study(plan))) == set(top)


def test_bad_search_input_writes_nothing(search_env, small_mnist):
    tmp = search_env["tmp"]
    with pytest.raises(NasproxyError, match="unknown proxy 'magic'"):
        plan_search(_request(search_env, proxy="magic"))
    with pytest.raises(NasproxyError, match="needs proxy_file"):
        plan_search(_request(search_env, proxy_file=None))
    with pytest.raises(NasproxyError, match="made by method 'random', not 'dc'"):
        plan_search(_request(search_env, proxy="ours"))
    other = CondensedSet.load(search_env["proxy_file"])
    CondensedSet(other.images, other.labels, {**other.meta, "val_fingerprint": "elsewhere"}).save(tmp / "other.pt")
    with pytest.raises(NasproxyError, match="another validation hold-out"):
        plan_search(_request(search_env, proxy_file=str(tmp / "other.pt")))
    with pytest.raises(NasproxyError, match="is a condensed set of 'mnist', not 'cifar10'"):
        plan_search(_request(search_env, dataset="cifar10"))
    with pytest.raises(NasproxyError, match="cannot open storage"):
        plan_search(_request(search_env, storage="postgresql://nobody@127.0.0.1:1/none"))
    (tmp / "broken.yaml").write_text("axes:\n  width: []\n")
    with pytest.raises(NasproxyError, match="has no values"):
        plan_search(_request(search_env, space=str(tmp / "broken.yaml")))
    assert not (tmp / "results").exists()  # no storage, no export was written


def test_tpe_sampler_trains_distinct_architectures_up_to_the_budget(search_env):
    req = _request(search_env, sampler="tpe", trials=5, epochs=1, repeats=1)
    run_search(req, progress=False)
    plan, _ = plan_search(req)
    study = _study(plan)
    counts = _completed_per_arch(study)
    trained = {a for a, t in completed_architectures(study).items()}
    assert plan.total == 5 and plan.done == 5 and len(trained) == 5
    # repeated proposals are answered from the finished trial, never trained again
    assert all(n == 1 for a, n in counts.items() if a in trained and not _cached(study, a))
    with pytest.raises(NasproxyError, match="needs a grid space"):
        plan_search(_request(search_env, sampler="tpe", sample=3))


def _cached(study, arch):
    return any(
        t.user_attrs.get("duplicate_of") is not None and t.user_attrs.get("arch_id") == arch
        for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    )


def test_score_test_is_part_of_the_protocol(search_env):
    plain, _ = plan_search(_request(search_env))
    with_test = _request(search_env, score_test=True, only=("convnet-w16-d2-instance-relu-avg",))
    plan, ctx = plan_search(with_test)
    assert ctx.protocol.score_test and plan.study_name != plain.study_name  # never mixed into one study
    run_search(with_test, progress=False)
    trial = next(iter(completed_architectures(_study(plan)).values()))
    assert len(trial.user_attrs["test_accs"]) == 2 and 0 <= trial.user_attrs["test_mean"] <= 1


def test_progress_counts_what_the_study_holds_not_what_this_worker_did(search_env):
    from nasproxy.search import work

    req = _request(search_env)
    plan, ctx = plan_search(req)
    other = work(ctx, plan.targets[:3])  # another worker, earlier or elsewhere
    seen = []
    mine = work(ctx, plan.targets, on_progress=seen.append)
    assert other == 3 and mine == 5
    assert seen[0] == 3 and seen[-1] == 8 and seen == sorted(seen)


def test_restricting_a_search_takes_one_way_and_names_the_setting(tmp_path):
    from nasproxy.search import chosen_architectures

    listed = tmp_path / "archs.txt"
    listed.write_text("convnet-w16-d1-none-relu-avg  # a comment\n\nconvnet-w32-d2-instance-relu-avg\n")
    assert chosen_architectures(space="tiny", dataset=None, archs_file=listed) == (
        "convnet-w16-d1-none-relu-avg",
        "convnet-w32-d2-instance-relu-avg",
    )
    assert chosen_architectures(space="tiny", dataset=None) is None
    with pytest.raises(NasproxyError, match="pass one of archs, only_top and sample") as both:
        chosen_architectures(space="tiny", dataset=None, archs_file=listed, sample=3)
    assert "--archs, --only-top and --sample" in both.value.for_cli()
    with pytest.raises(NasproxyError, match="only_top needs from"):
        chosen_architectures(space="tiny", dataset=None, only_top=5)
    with pytest.raises(NasproxyError, match="devices needs at least one device"):
        SearchRequest(space="tiny", proxy="params", devices=())
    assert SearchRequest(space="tiny", proxy="params", devices=("cuda:1", "cuda:0")).device == "cuda:1"


def test_studies_tells_done_running_and_interrupted_architectures(search_env):
    from click.testing import CliRunner

    from nasproxy.cli import main
    from nasproxy.search import study_progress, work

    req = _request(search_env, proxy="params", proxy_file=None)
    plan, ctx = plan_search(req)
    assert work(ctx, plan.targets[:5]) == 5
    study = _study(plan)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    claims = {  # arch -> (pid, heartbeat): a live worker (this process), a dead one, and a duplicate claim
        plan.targets[5]: (os.getpid(), time.time()),
        plan.targets[6]: (dead.pid, time.time()),
    }
    for arch, (pid, beat) in claims.items():
        trial = study.ask()
        for key, value in (("host", socket.gethostname()), ("pid", pid), ("heartbeat", beat), ("arch_id", arch)):
            trial.set_user_attr(key, value)
    duplicate = study.ask()
    duplicate.set_user_attr("arch_id", plan.targets[7])
    duplicate.set_user_attr("duplicate_of", 0)
    study.tell(duplicate, state=optuna.trial.TrialState.FAIL)

    (progress,) = study_progress([plan.storage_url], dataset="mnist", space="tiny")
    assert progress.proxy == "params" and progress.done == 5
    assert progress.running == (plan.targets[5],) and progress.interrupted == 1
    assert progress.worker_seconds > 0 and progress.last_done is not None
    assert study_progress([plan.storage_url], dataset="cifar10") == []

    out = CliRunner().invoke(main, ["studies", "--storage", plan.storage_url], catch_exceptions=False).output
    row = next(line for line in out.splitlines() if line.startswith(plan.study_name)).split()
    assert row[1:5] == ["params", "5", "1", "1"]


def test_an_hours_budget_stops_claiming_and_the_same_command_continues(search_env):
    from click.testing import CliRunner

    from nasproxy import SearchRequest as Request
    from nasproxy.cli import main
    from nasproxy.report import default_storages
    from nasproxy.search import study_progress

    args = ["search", "--space", "tiny", "--proxy", "params", "--dataset", "mnist", "--holdout", "50", "-q"]
    result = CliRunner().invoke(main, [*args, "--hours", "1e-9"], catch_exceptions=False)
    assert result.exit_code == 75  # EX_TEMPFAIL: not finished, try again
    # a budget spent before the first claim, or during it: at most that one architecture is trained
    assert re.search(r"^stopped: the 1e-09-hour budget ran out with [01] of 8 architectures done", result.output)
    result = CliRunner().invoke(main, [*args, "--hours", "1"], catch_exceptions=False)
    assert result.exit_code == 0 and "stopped" not in result.output
    (progress,) = study_progress(default_storages())
    assert progress.done == 8
    with pytest.raises(NasproxyError, match="hours must be a positive number"):
        Request(space="tiny", proxy="params", hours=0)


def test_an_architecture_killed_in_training_resumes_from_its_checkpoint(search_env, monkeypatch):
    from functools import partial

    from nasproxy.engine import Checkpoint
    from nasproxy.search.proxies import _training

    req = _request(search_env, proxy="full", proxy_file=None, epochs=4, repeats=2)
    reference = _request(search_env, proxy="full", proxy_file=None, epochs=4, repeats=2, storage="ref.journal")
    run_search(reference, progress=False)
    monkeypatch.setattr(_training, "Checkpoint", partial(Checkpoint, interval=0))  # a save every epoch
    train = _training.train_from_scratch
    epochs = []

    def killed_in_epoch_3_of_the_second_network(*args, progress=None, **kw):
        def count(networks):
            epochs.append(networks)
            if len(epochs) == 7:  # 4 epochs of network 1, then 3 of network 2
                raise KeyboardInterrupt

        return train(*args, progress=count, **kw)

    monkeypatch.setattr(_training, "train_from_scratch", killed_in_epoch_3_of_the_second_network)
    with pytest.raises(KeyboardInterrupt):
        run_search(req, progress=False)
    plan, _ = plan_search(req)
    (saved,) = (search_env["tmp"] / "cache" / "checkpoints" / plan.study_name).glob("*.pt")
    monkeypatch.setattr(_training, "train_from_scratch", train)
    run_search(req, progress=False)
    assert not saved.exists()  # removed once the architecture is recorded
    done, ref = completed_architectures(_study(plan)), completed_architectures(_study_by_name("ref.journal"))
    resumed = done[saved.stem]
    assert resumed.user_attrs["resumed_seconds"] > 0
    assert resumed.user_attrs["seconds"] >= resumed.user_attrs["resumed_seconds"]
    for arch, trial in done.items():  # the resumed architecture too: exactly what an uninterrupted run gives
        for key in ("val_accs", "val_accs_half", "test_accs", "val_accs_at", "test_accs_at"):
            assert trial.user_attrs[key] == ref[arch].user_attrs[key], (arch, key)
