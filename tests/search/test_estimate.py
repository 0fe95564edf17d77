"""The cost model re-fitted to a study's own finished architectures."""

import numpy as np
import pytest

from nasproxy.search._estimate import LIKELY, MIN_FINISHED, PACE_SPREAD, features, fit, refit_estimate

TRUE = np.array([2e-8, 3e-5, 4.0])  # seconds per FLOP, per activation element, per architecture


def _architectures(n, rng):
    flops = rng.uniform(1e6, 5e8, n)
    activations = flops / rng.uniform(50, 400, n)
    return np.array([features(f, a) for f, a in zip(flops, activations)])


def test_the_fit_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    x = _architectures(40, rng)
    np.testing.assert_allclose(fit(x, x @ TRUE), TRUE, rtol=1e-6)


def _coverage(sweep, *, draws: int = 200, resamples: int = 100, **options) -> float:
    """The share of ``draws`` seeded sweeps whose remaining total the likely range holds. ``sweep(rng)``:
    (features, measured seconds, how many finished, their runs or None)."""
    covered = 0
    for seed in range(draws):
        x, seconds, done, runs = sweep(np.random.default_rng(seed))
        estimate = refit_estimate(
            list(x[:done]), list(seconds[:done]), list(x[done:]), runs=runs, resamples=resamples, seed=seed,
            **options,
        )  # fmt: skip
        assert estimate.fitted_on == done and estimate.low <= estimate.seconds <= estimate.high
        covered += estimate.low <= seconds[done:].sum() <= estimate.high
    return covered / draws


def test_the_range_covers_the_truth_at_about_its_nominal_rate():
    def noisy(rng):  # each architecture off by its own noise, on a machine known to be steady
        x = _architectures(60, rng)
        return x, x @ TRUE * rng.lognormal(0, 0.25, len(x)), 10, None

    # nominal LIKELY (80 %) within sampling error of 200 draws (about +-6 points at 2 standard errors): the
    # drift term does not widen a range over noise alone
    assert LIKELY - 0.1 <= _coverage(noisy, pace_spread=0.0) <= LIKELY + 0.1


def test_after_one_run_the_range_covers_a_rest_at_the_measured_pace_spread_at_about_its_nominal_rate():
    def one_run_seen(rng):  # the rest runs at a pace the first run could not show, as this project measured
        x = _architectures(60, rng)
        pace = np.r_[np.ones(10), np.full(50, rng.lognormal(0, PACE_SPREAD))]
        return x, x @ TRUE * pace * rng.lognormal(0, 0.25, len(x)), 10, None

    assert LIKELY - 0.1 <= _coverage(one_run_seen) <= LIKELY + 0.1
    steady = _coverage(one_run_seen, pace_spread=0.0)
    assert steady < LIKELY - 0.1  # without the prior, the range is too narrow for such a machine


def test_the_range_covers_a_sweep_that_outlasts_its_runs_at_about_its_nominal_rate():
    def in_runs(rng):  # each run (a session, another machine of the same kind) at its own pace
        runs = np.concatenate([np.repeat(np.arange(6), 6), np.repeat([6, 7], 20)])  # the rest: two new runs
        x = _architectures(len(runs), rng)
        seconds = x @ TRUE * np.exp(rng.normal(0, 0.25, 8)[runs]) * rng.lognormal(0, 0.2, len(runs))
        return x, seconds, 36, list(runs[:36])

    assert LIKELY - 0.1 <= _coverage(in_runs) <= LIKELY + 0.1


def test_workers_started_together_make_one_run():
    from datetime import datetime, timedelta
    from types import SimpleNamespace

    from nasproxy.search._estimate import runs_of

    t0 = datetime(2026, 12, 5)

    def trial(pid, start, end):
        attrs = {"host": "vm", "pid": pid}
        return SimpleNamespace(user_attrs=attrs, datetime_start=t0 + timedelta(minutes=start),
                               datetime_complete=t0 + timedelta(minutes=end))  # fmt: skip

    # workers 1 and 2 of one run, then, a session later, two workers, one with worker 1's process id again
    trials = [trial(1, 0, 10), trial(2, 1, 12), trial(1, 10, 20), trial(3, 90, 100), trial(1, 95, 110)]
    assert runs_of(trials) == [0, 0, 0, 1, 1]
    assert runs_of([trial(1, 0, 10), trial(1, 10, 210)]) == [0, 0]  # a long training is still one run


def test_the_plan_refits_after_the_stated_number_finished(env, monkeypatch):
    from nasproxy.search import SearchRequest, _cost, plan_search, run_search

    base = dict(
        space="tiny", proxy="full", dataset="mnist", holdout=50, epochs=1, repeats=1, device="cpu",
        backend="aten", storage=str(env / "s.journal"),
    )  # fmt: skip
    from nasproxy.spaces import load_space

    ids = [c.arch_id for c in load_space("tiny").candidates()]
    for finished in range(MIN_FINISHED + 1):
        if finished == MIN_FINISHED:  # the finished architectures price the rest: the machine is not timed
            monkeypatch.setattr(_cost, "measured_flops_per_second", lambda *a, **k: pytest.fail("timed"))
        plan, _ = plan_search(SearchRequest(**base), dry_run=True)
        assert plan.done == finished
        assert plan.estimate.fitted_on == (finished if finished >= MIN_FINISHED else 0)
        if finished < MIN_FINISHED:
            assert plan.estimate.high == pytest.approx(7.3 * plan.estimate.seconds)
        run_search(SearchRequest(**{**base, "only": (ids[finished],)}), progress=False)


def test_a_process_times_the_machine_once_per_setting_and_again_after_a_while(monkeypatch):
    from types import SimpleNamespace

    import torch

    from nasproxy.search import _cost

    timed, clock = [], [1000.0]
    monkeypatch.setattr(_cost, "_speeds", {})
    monkeypatch.setattr(_cost, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(_cost, "_timed_flops_per_second", lambda rt, *a: timed.append(rt.backend) or len(timed))
    aten, kernels = (SimpleNamespace(device=torch.device("cpu"), backend=b) for b in ("aten", "cpu-kernels"))

    def speed(runtime, precision="fp32"):
        return _cost.measured_flops_per_second(runtime, (1, 28, 28), 10, precision)

    assert [speed(aten), speed(aten), speed(kernels), speed(aten, "bf16")] == [1, 1, 2, 3]
    clock[0] += _cost.SPEED_REUSED_SECONDS - 1
    assert speed(aten) == 1
    clock[0] += 1
    assert speed(aten) == 4 and timed == ["aten", "cpu-kernels", "aten", "aten"]


def test_a_search_that_never_reads_its_price_does_not_time_the_machine(env, monkeypatch):
    # a quiet search (a script, a Slurm array task) had timed the machine for an estimate nobody saw
    import nasproxy
    from nasproxy.search import _cost

    timed = []
    monkeypatch.setattr(_cost, "_speeds", {})
    monkeypatch.setattr(_cost, "_timed_flops_per_second", lambda *a: timed.append(a) or 1e9)
    result = nasproxy.search(
        space="tiny", proxy="full", dataset="mnist", holdout=50, epochs=1, repeats=1, sample=2, device="cpu",
        storage=str(env / "s.journal"),
    )  # fmt: skip
    assert result.finished and timed == []
    assert result.plan.estimate.seconds > 0 and len(timed) == 1  # read: priced then, once
    assert result.plan.estimate_seconds == result.plan.estimate.seconds and len(timed) == 1


def test_the_progress_bar_shows_the_refitted_time_left(env, capsys):
    from nasproxy.search import SearchRequest, run_search

    request = SearchRequest(
        space="tiny", proxy="full", dataset="mnist", holdout=50, epochs=1, repeats=1, device="cpu",
        backend="aten", storage=str(env / "s.journal"),
    )  # fmt: skip
    run_search(request, progress=True)
    bar = capsys.readouterr().err
    assert "left=" in bar and "likely" in bar  # shown once 3 architectures finished, with its range


def test_a_sweep_of_a_minute_or_more_is_priced_by_timing_its_own_architectures(env, monkeypatch):
    import dataclasses

    from nasproxy.search import SearchRequest, _plan, plan_search
    from nasproxy.search._calibrate import CALIBRATED_WITHIN, PROBES

    request = SearchRequest(
        space="tiny", proxy="full", dataset="mnist", holdout=50, epochs=1, repeats=1, device="cpu",
        backend="aten", storage=str(env / "s.journal"),
    )  # fmt: skip
    plan, _ = plan_search(request, dry_run=True)
    assert plan.estimate.calibrated_on == 0  # the FLOP model's few seconds: not worth timing
    monkeypatch.setattr(_plan, "CALIBRATE_ABOVE_SECONDS", 0.0)
    plan, _ = plan_search(request, dry_run=True)
    said: list[str] = []  # what a reader waiting on the timing is told first
    plan.announce = said.append
    estimate = plan.estimate
    assert estimate.calibrated_on == PROBES and estimate.fitted_on == 0 and estimate.seconds > 0
    assert len(said) == 1 and f"timing {PROBES} of its architectures" in said[0]
    assert estimate.high == pytest.approx(CALIBRATED_WITHIN * estimate.seconds)
    assert estimate.low == pytest.approx(estimate.seconds / CALIBRATED_WITHIN)
    assert not (env / "s.journal").exists()  # timing writes nothing
    few = dataclasses.replace(request, sample=PROBES, sample_seed=0)
    assert plan_search(few, dry_run=True)[0].estimate.calibrated_on == 0  # timing them would cost their training


def test_the_search_command_says_it_is_timing_before_it_does(env, monkeypatch):
    """Timing the costliest architectures of a large space takes minutes on a CPU: the command says so first
    (the timing itself is the test above's; here it returns at once)."""
    from click.testing import CliRunner

    from nasproxy.cli import main
    from nasproxy.search import _calibrate, _plan
    from nasproxy.search._estimate import Estimate

    monkeypatch.setattr(_plan, "CALIBRATE_ABOVE_SECONDS", 0.0)
    timed = Estimate(600.0, 400.0, 900.0, 0, calibrated_on=_calibrate.PROBES)
    monkeypatch.setattr(_calibrate, "calibrated_estimate", lambda *args, **kwargs: timed)
    args = ["search", "--space", "tiny", "--proxy", "full", "--dataset", "mnist", "--holdout", "50", "--epochs", "1"]
    args += ["--repeats", "1", "--backend", "aten", "--storage", str(env / "s.journal"), "--dry-run"]
    lines = CliRunner().invoke(main, args, catch_exceptions=False).stderr.splitlines()
    pricing = [i for i, line in enumerate(lines) if line.startswith("pricing this search: timing")]
    study = [i for i, line in enumerate(lines) if line.startswith("study ")]
    assert len(pricing) == 1 and len(study) == 1 and pricing[0] < study[0], lines
    assert "from timing" in lines[study[0]]


@pytest.mark.parametrize(("max_steps", "runs"), [(20, [1, 1, 4, 13, 21, 21]), (2, [1, 1, 3, 3]), (None, None)])
def test_a_probe_trains_no_longer_than_the_sweeps_architectures(max_steps, runs):
    """Steps too fast to time grow 4x per run, up to the architecture's own steps (or MAX_TIMED_STEPS)."""
    import torch

    from nasproxy.search._calibrate import MAX_TIMED_STEPS, _step_seconds

    calls = []
    limit = {} if max_steps is None else {"max_steps": max_steps}
    assert _step_seconds(torch.device("cpu"), calls.append, **limit) >= 0.0
    assert calls == (runs or [1, 1, 4, 13, 49, 1 + MAX_TIMED_STEPS, 1 + MAX_TIMED_STEPS])


@pytest.mark.parametrize(("per_step", "runs"), [(30.0, [1, 2]), (1.0, [1, 1, 4, 4])])
def test_a_long_step_is_timed_by_one_more_step_not_by_repeats(per_step, runs, monkeypatch):
    """A large network on a CPU (a step of tens of seconds) is timed by single runs of 1 and 2 steps, where
    repeats and growing runs would cost minutes per probe; a step under LONG_RUN_SECONDS is timed as before."""
    import torch

    from nasproxy.search import _calibrate

    assert _calibrate.LONG_RUN_SECONDS == 2.0
    calls = []

    def seconds(device, run):
        run()
        return per_step * calls[-1] + 0.5  # the 0.5: what every run pays once (building, first calls)

    monkeypatch.setattr(_calibrate, "_seconds", seconds)
    assert _calibrate._step_seconds(torch.device("cpu"), calls.append) == pytest.approx(per_step)
    assert calls == runs
    calls.clear()
    assert _calibrate._timed(torch.device("cpu"), lambda: calls.append(1)) == pytest.approx(per_step + 0.5)
    assert len(calls) == (1 if per_step + 0.5 >= 2 else 2)  # a scoring pass likewise


def test_studies_price_what_is_left_of_every_sweep_into_a_study(env):
    import dataclasses
    import json

    from click.testing import CliRunner

    import nasproxy
    from nasproxy.cli import main
    from nasproxy.search import study_progress

    common = dict(
        space="tiny", proxy="full", dataset="mnist", holdout=50, epochs=1, repeats=1, device="cpu",
        backend="aten", storage=env / "s.journal",
    )  # fmt: skip
    whole = nasproxy.search(**common, dry_run=True)
    nasproxy.search(**common, archs=whole.plan.targets[:2])  # two sweeps into one study: 6 targets, 2 done
    nasproxy.search(**common, archs=whole.plan.targets[2:6])
    (progress,) = study_progress([str(env / "s.journal")])
    assert (progress.targets, progress.done) == (6, 6) and progress.left is None  # nothing left
    nasproxy.search(**common, archs=whole.plan.targets, hours=1e-9)  # records all 8, trains at most one
    (progress,) = study_progress([str(env / "s.journal")])
    assert progress.targets == 8 and progress.done in (6, 7)
    assert progress.left.fitted_on == progress.done and progress.left.seconds > 0
    assert progress.eta_seconds is None  # no worker training now
    two_workers = dataclasses.replace(progress, running=("a", "b"))
    assert two_workers.eta_seconds == pytest.approx(progress.left.seconds / 2)
    shown = json.loads(CliRunner().invoke(main, ["studies", "--storage", str(env / "s.journal"), "--json"]).output)
    assert shown[0]["targets"] == 8 and shown[0]["left_worker_seconds"] == round(progress.left.seconds, 1)
    table = CliRunner().invoke(main, ["studies", "--storage", str(env / "s.journal")]).output
    assert "left" in table.splitlines()[0] and "ETA" in table.splitlines()[0]


def test_a_dry_run_says_how_much_of_the_sweep_the_hours_budget_covers(env):
    from click.testing import CliRunner

    from nasproxy.cli import main

    args = ["search", "--space", "tiny", "--proxy", "full", "--dataset", "mnist", "--holdout", "50"]
    args += ["--epochs", "1", "--repeats", "1", "--storage", str(env / "s.journal"), "--dry-run"]
    short = CliRunner().invoke(main, [*args, "--hours", "1e-9", "--workers", "2"]).output
    assert "the 1e-09-hour budget covers about 0% of it with 2 worker(s)" in short
    assert "budget covers" not in CliRunner().invoke(main, [*args, "--hours", "100"]).output
    assert not (env / "s.journal").exists()


def test_studies_price_a_new_machines_rest_at_the_pace_of_the_machine_that_finished_the_most():
    from datetime import datetime, timedelta
    from types import SimpleNamespace

    from nasproxy.search._progress import _left

    rng = np.random.default_rng(0)
    x = _architectures(10, rng)
    targets = {f"a{i}": [float(x[i, 0]), float(x[i, 1])] for i in range(10)}
    t0 = datetime(2026, 12, 5)

    def trial(i, machine, minute, **extra):
        attrs = {"machine": machine, "device": "cpu", "backend": "aten", "seconds": float(x[i] @ TRUE), **extra}
        attrs |= {"arch_id": f"a{i}", "host": machine, "pid": 1}
        when = t0 + timedelta(minutes=minute)
        return SimpleNamespace(user_attrs=attrs, datetime_start=when, datetime_complete=when)

    # four finished on the old machine, then the new session's machine finished one resumed training
    done = {f"a{i}": trial(i, "old", i) for i in range(4)}
    done["a4"] = trial(4, "new", 600, resumed_seconds=5.0)
    left = _left(targets, done)
    assert left["left_priced_on"] == "old" and left["left"].fitted_on == 4
    assert left["left"].seconds == pytest.approx(float((x[5:] @ TRUE).sum()), rel=1e-6)
    # once the new machine has finished enough of its own, its pace prices the rest
    done |= {f"a{i}": trial(i, "new", 600 + i) for i in range(5, 8)}
    left = _left(targets, done)
    assert left["left_priced_on"] is None and left["left"].fitted_on == 3
    assert _left(targets, {"a0": trial(0, "old", 0)}) == {}  # too few anywhere: nothing to price by
