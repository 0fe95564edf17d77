"""Worker processes: each claims an architecture, scores it, records it, and repeats until none is left
(see ``_claims`` for how claims stay exactly-once)."""

from __future__ import annotations

import dataclasses
import math
import os
import random
import socket
import sys
import time
from pathlib import Path

from nasproxy import __version__
from nasproxy._cache import cache_dir
from nasproxy._errors import BudgetSpent, NasproxyError, setting
from nasproxy.engine import Checkpoint
from nasproxy.search._claims import Heartbeat, alive, completed_architectures, fail_stale, rival_claim
from nasproxy.search._context import SearchContext, SearchRequest
from nasproxy.search._estimate import Estimate
from nasproxy.search._export import EXPORT_DIR, export_study
from nasproxy.search._params import chosen_architecture_sampler, distributions, record_params
from nasproxy.search._plan import Plan, plan_search
from nasproxy.search._storage import is_transient


def work(ctx: SearchContext, targets: list[str], *, worker: int = 0, on_done=None, on_progress=None) -> int:
    """Complete architectures until none is left; returns how many this worker completed. ``on_progress``
    hears how many of the search's architectures the study holds complete, whichever worker completed them.

    Sweeps take the costliest architecture left (worker 0) or one at random (other workers); with
    ``--sampler tpe`` Optuna's TPE proposes architectures until ``--trials`` distinct ones are complete. With
    ``hours`` set, the worker stops claiming architectures once that much time has passed since it started."""
    from optuna.trial import TrialState

    sampler = _sampler(ctx.request, worker)
    chosen = chosen_architecture_sampler() if sampler is None else None  # a sweep records its choice as params
    study = ctx.open_study(create=False, sampler=sampler or chosen)
    rng = random.Random(f"{socket.gethostname()}-{os.getpid()}-{worker}")
    hours = ctx.request.hours
    deadline = None if hours is None else time.monotonic() + 3600 * hours
    completed = 0
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            return completed
        trials = study.get_trials(deepcopy=False)
        fail_stale(study, trials)
        now = time.time()
        done = completed_architectures(study, trials)
        if on_progress is not None:
            on_progress(completed_count(ctx.request, done, targets))
        busy = {t.user_attrs.get("arch_id") for t in trials if t.state == TrialState.RUNNING and alive(t, now)}
        if ctx.request.sampler == "tpe":
            if len(done) + len(busy - set(done)) >= min(ctx.request.trials, len(ctx.space)):
                return completed
            trial = study.ask(distributions(ctx.space))
            arch = ctx.space.arch_id({**ctx.space.fixed, **trial.params})
            if arch in done:  # TPE proposed a finished architecture: tell it the known score, train nothing
                trial.set_user_attr("arch_id", arch)
                trial.set_user_attr("duplicate_of", done[arch].number)
                study.tell(trial, done[arch].value)
                continue
        else:
            todo = [a for a in targets if a not in done and a not in busy]
            if not todo:
                return completed
            arch = _next_architecture(ctx, _resumable_first(todo, study.study_name), worker, rng)
            trial = study.ask()
        # who runs it before what it runs: a worker killed between the two leaves either a trial of no
        # architecture or one whose dead process id marks it stale, never a claim that looks alive for minutes
        for key, value in (
            ("host", socket.gethostname()),
            ("pid", os.getpid()),
            ("heartbeat", time.time()),
            ("arch_id", arch),
        ):
            trial.set_user_attr(key, value)
        if _stepped_back(study, trial, arch):
            continue
        record_params(trial, ctx.space, arch, chosen)
        value = _score_trial(ctx, study, trial, arch)
        if value is None:
            continue
        completed += 1
        if on_done is not None:
            on_done(arch, value)


def _stepped_back(study, trial, arch: str) -> bool:
    """Whether ``trial`` gave ``arch`` up to a rival claim (``_claims``): then it is failed and names the rival."""
    from optuna.trial import TrialState

    rival = rival_claim(study, arch, trial.number)
    if rival is None:
        return False
    trial.set_user_attr("duplicate_of", rival)
    study.tell(trial, state=TrialState.FAIL)
    return True


def _checkpoint_folder(study_name: str) -> Path:
    return cache_dir() / "checkpoints" / study_name


def _checkpoint_path(study_name: str, arch: str) -> Path:
    return _checkpoint_folder(study_name) / f"{arch}.pt"


def _resumable_first(todo: list[str], study_name: str) -> list[str]:
    """The architectures an interrupted run left a checkpoint of, when there are any, else ``todo``: a restart
    finishes the trainings it paid for before it starts new ones, instead of piling up half-trained networks
    that each hold disk and, until a later restart happens to claim them, their worker time."""
    folder = _checkpoint_folder(study_name)
    saved = {path.stem for path in folder.glob("*.pt")} if folder.is_dir() else set()  # one listing, not a stat each
    return [a for a in todo if a in saved] or todo


def _next_architecture(ctx: SearchContext, todo: list[str], worker: int, rng: random.Random) -> str:
    """Worker 0 takes the costliest architecture first (the first in ``targets`` among equals), by the cost
    model the plan fitted where it has one, else by FLOPs: started early, the longest trainings do not end a
    sweep alone on one worker while the others idle. Other workers draw at random, so that workers started
    together seldom claim the same architecture. Training-free proxies score any architecture in
    milliseconds, less than counting its FLOPs: they keep the order."""
    if worker != 0:
        return rng.choice(todo)
    if ctx.proxy.default_epochs == 0:
        return todo[0]
    price = ctx.price
    if price is not None and price.coef is not None:
        return max(todo, key=lambda a: price.predicted_seconds(ctx.flops(a), ctx.activations(a)))
    return max(todo, key=ctx.flops)


def completed_count(request: SearchRequest, done: dict, targets: list[str]) -> int:
    """Architectures of this search complete in the study (TPE's are whichever it proposed)."""
    return len(done) if request.sampler == "tpe" else len(set(done) & set(targets))


def _score_trial(ctx: SearchContext, study, trial, arch: str) -> float | None:
    """Score ``arch`` in ``trial``; None when an earlier trial turned out to claim it too (this one steps back)."""
    from optuna.trial import TrialState

    cand = ctx.space.get(arch)
    # an architecture whose worker was killed resumes from this file when it is claimed again (on this machine)
    checkpoint = Checkpoint(_checkpoint_path(study.study_name, arch))
    runtime = dataclasses.replace(ctx.runtime, checkpoint=checkpoint.path)
    try:
        with Heartbeat(trial):
            start = time.perf_counter()
            score = ctx.proxy.score(ctx.space, cand, ctx.dataset, ctx.protocol, ctx.condensed, runtime)
            # the worker time of the architecture, also what an interrupted earlier run spent on it
            seconds = time.perf_counter() - start + score.attrs.get("resumed_seconds", 0.0)
    except BaseException as exc:
        study.tell(trial, state=TrialState.FAIL)
        if ctx.protocol.plugin is not None and isinstance(exc, Exception) and not isinstance(exc, NasproxyError):
            # a plugin's own error is the user's to fix: one line naming it, not nasproxy's traceback
            raise NasproxyError(
                f"proxy plugin {ctx.proxy_name!r} failed on {arch}: {exc.__class__.__name__}: {exc}"
            ) from None
        raise
    c, h, w = ctx.dataset.image_shape
    net = ctx.space.build(cand.spec, channels=c, num_classes=ctx.dataset.num_classes, image_size=(h, w))
    record = {
        "spec": cand.spec,
        "proxy": ctx.proxy_name,
        "protocol_hash": ctx.protocol_hash,
        "seconds": seconds,
        "params": sum(p.numel() for p in net.parameters()),
        "flops": ctx.flops(arch),
        "device": str(ctx.device),
        "backend": ctx.runtime.backend,
        "machine": ctx.machine,
        "nasproxy_version": __version__,
        **score.attrs,
    }
    for key, value in record.items():
        trial.set_user_attr(key, value)
    # a second look before completing: another worker may have claimed the same architecture after this one's
    # first look (a trial asked earlier but named later) or lived on after its heartbeat looked stale
    if _stepped_back(study, trial, arch):
        return None
    study.tell(trial, score.value)
    checkpoint.discard()
    return score.value


def _sampler(request: SearchRequest, worker: int):
    if request.sampler != "tpe":
        return None
    import optuna

    return optuna.samplers.TPESampler(seed=request.seed * 1009 + worker)


def _worker_main(
    request: SearchRequest,
    worker: int,
    targets: list[str],
    price: Estimate | None,
    counts: tuple[dict[str, int], dict[str, int]] = ({}, {}),
) -> None:
    from nasproxy.engine import configure_process

    configure_process()  # a worker is a long-running entry point of its own
    try:
        ctx = SearchContext(request, validated=True)  # the command that spawned it validated the space
        ctx.price = price  # the parent's cost model: worker 0 ranks by it as a single worker would
        ctx.adopt_counts(counts)  # and the parent's FLOP and activation counts, which it ranks by
        work(ctx, targets, worker=worker)
    except NasproxyError as exc:  # one line, as the command itself would print it; the parent reports the exit
        print(f"error: worker {worker}: {exc.for_cli()}", file=sys.stderr, flush=True)
        sys.exit(2)


def run_search(
    request: SearchRequest,
    *,
    workers: int = 1,
    progress: bool = True,
    plan: Plan | None = None,
    ctx: SearchContext | None = None,
    csv: str | os.PathLike | None = "default",
) -> Path | None:
    """Complete every target architecture (in ``workers`` processes) and export the study to ``csv`` (the
    default: ``results/search/<study>.csv``; None: no file); returns the CSV's path. With ``request.hours``,
    :class:`BudgetSpent` (after the export) says that the budget ran out first."""
    if plan is None or ctx is None:
        plan, ctx = plan_search(request)
    if workers < 1:
        raise NasproxyError(f"{setting('workers')} must be at least 1")
    left = plan.total - plan.done
    from tqdm.auto import tqdm

    bar = tqdm(
        total=plan.total,
        initial=plan.done,
        disable=not progress,
        desc=f"search {request.proxy}",
        unit="arch",
        dynamic_ncols=True,
    )
    best = [-math.inf]
    shown = _EtaPostfix(ctx, plan) if progress and request.sampler == "sweep" else None

    def on_done(arch: str, value: float) -> None:
        best[0] = max(best[0], value)
        bar.set_postfix(best=f"{best[0]:.4f}", **(shown.left() if shown else {}))

    def on_progress(count: int) -> None:
        bar.update(min(count, plan.total) - bar.n)

    started = time.monotonic()  # no later than any worker's own clock for the budget starts
    if left:
        if workers == 1:
            work(ctx, plan.targets, on_done=on_done, on_progress=on_progress)
        else:
            _run_workers(request, plan, ctx, workers, bar, shown)
    bar.close()
    study = ctx.open_study(create=False)
    out = None
    if csv is not None:
        out = export_study(study, EXPORT_DIR / f"{plan.study_name}.csv" if csv == "default" else Path(csv))
    if request.hours is not None:
        done = completed_count(request, completed_architectures(study), plan.targets)
        # before the budget's end, the workers stop only when every architecture left is in training
        # elsewhere (another command on the same storage): their end, not this one's budget
        if done < plan.total and time.monotonic() - started >= 3600 * request.hours:
            raise BudgetSpent(
                f"the {request.hours:g}-hour budget ran out with {done} of {plan.total} architectures done"
                + (f" (exported to {out})" if out else "")
                + "; run the same search again to continue"
            )
    return out


class _EtaPostfix:
    """The progress bar's "left" field: the remaining architectures priced by the cost model re-fitted to
    those finished on this machine (tqdm's own ETA assumes every architecture costs the same)."""

    def __init__(self, ctx: SearchContext, plan: Plan) -> None:
        self.ctx, self.plan = ctx, plan
        self.study = None

    def left(self, done: dict | None = None) -> dict[str, str]:
        """``done``: the completed architectures where the caller has just read them."""
        from nasproxy.search._plan import remaining_estimate

        if done is None:
            self.study = self.study or self.ctx.open_study(create=False)
            done = completed_architectures(self.study)
        estimate = remaining_estimate(self.ctx, done, self.plan.targets)
        return {} if estimate is None else {"left": estimate.describe()}


def _run_workers(
    request: SearchRequest, plan: Plan, ctx: SearchContext, workers: int, bar, shown: _EtaPostfix | None = None
) -> None:
    import multiprocessing as mp
    from multiprocessing.connection import wait

    threads = request.threads or max(1, (os.cpu_count() or 1) // workers)
    request = dataclasses.replace(request, threads=threads, storage=plan.storage_url, study=plan.study_name)
    devices = request.devices or (request.device,)
    spawn = mp.get_context("spawn")
    procs = []
    for i in range(workers):  # round-robin over the devices: several candidates in flight on each
        own = dataclasses.replace(request, device=devices[i % len(devices)], devices=None)
        # numbered from 0, so that one of them is the costliest-first worker
        args = (own, i, plan.targets, ctx.price, ctx.counts())
        procs.append(spawn.Process(target=_worker_main, args=args, daemon=False))
    for p in procs:
        p.start()
    study = ctx.open_study(create=False)
    try:
        while running := [p.sentinel for p in procs if p.is_alive()]:
            # woken as soon as a worker exits, so the search ends with its last worker, not up to 2 s later
            wait(running, timeout=2.0)
            try:
                finished = completed_architectures(study)
                done = completed_count(request, finished, plan.targets)
                if shown is not None and min(done, plan.total) != bar.n:
                    bar.set_postfix(**shown.left(finished))
            except Exception as exc:  # noqa: BLE001 - the bar waits out a storage that is briefly away
                if not is_transient(exc):
                    raise
                continue
            bar.update(min(done, plan.total) - bar.n)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    finally:
        for p in procs:
            p.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise NasproxyError(
            f"{len(failed)} worker(s) failed (exit codes {failed}); re-run the same command to "
            "finish the remaining architectures"
        )
