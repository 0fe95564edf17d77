"""The search runner: one Optuna study per (dataset, space, proxy, protocol), filled by one or many worker
processes, on one or many machines, resumable at any point.

Each trial is one architecture. Workers pick architectures that are neither complete nor being trained by
a live worker; if two workers still pick the same one, the trial with the lower number wins and the other
steps back, so every architecture is completed exactly once. A worker that dies leaves a RUNNING trial:
on the same host its dead process id reveals it at once, elsewhere its heartbeat goes stale; either way the
trial is marked FAIL and the architecture is trained again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasproxy import __version__
from nasproxy._errors import NasproxyError

HEARTBEAT_SECONDS = 20.0
STALE_SECONDS = 120.0
EXPORT_DIR = Path("results") / "search"


@dataclass(frozen=True)
class SearchRequest:
    """Everything a worker process needs to rebuild the search on its own (it is pickled to workers)."""

    space: str
    proxy: str
    dataset: str = "fashion-mnist"
    proxy_file: str | None = None
    holdout: int = 5000
    split_seed: int = 0
    data_root: str | None = None
    download: bool = False
    epochs: int | None = None  # None: the proxy's default
    repeats: int | None = None
    batch_size: int = 256
    lr: float = 0.01
    precision: str = "fp32"
    seed: int = 0
    score_test: bool | None = None  # None: the proxy's default (only full data scores the test set)
    ipc: int = 10  # early-stopping without a proxy file: the budget of a proxy of this many images per class
    sample: int | None = None  # a seeded random sample of this many architectures
    sample_seed: int = 0
    only: tuple[str, ...] | None = None  # just these architecture ids
    sampler: str = "sweep"  # sweep (every target) | tpe (Optuna's TPE proposes, grid spaces only)
    trials: int = 50  # with --sampler tpe: distinct architectures to complete
    storage: str | None = None
    study: str | None = None
    device: str = "auto"
    backend: str = "auto"  # how networks run (nasproxy.backends); recorded per trial, not part of the protocol
    threads: int | None = None  # torch threads per worker


@dataclass
class Plan:
    request: SearchRequest
    study_name: str
    storage_url: str
    protocol: Any
    targets: list[str]  # architecture ids a sweep completes (with TPE: the whole space, to draw from)
    total: int  # architectures this search completes
    done: int
    estimate_seconds: float
    device_name: str


class _Context:
    """What one process loads to score architectures: dataset, space, proxy file, protocol, study."""

    def __init__(self, request: SearchRequest) -> None:
        import torch

        from nasproxy._artifact import Proxy
        from nasproxy.backends import resolve_backend
        from nasproxy.data import SplitSpec, dataset_key, load_dataset
        from nasproxy.engine import device_name, resolve_device
        from nasproxy.search._proxies import FILE_PROXY_METHODS, PROXIES, Protocol, Runtime
        from nasproxy.spaces import load_space

        if request.threads:
            torch.set_num_threads(request.threads)
        self.request = request
        self._flops: dict[str, int] = {}
        self.kind = PROXIES.get(request.proxy)
        self.device = resolve_device(request.device)
        self.runtime = Runtime(self.device, resolve_backend(request.backend, self.device))
        self.machine = device_name(self.device)  # recorded with every trial
        self.proxy = None
        proxy_hash = None
        if self.kind.needs_file or (request.proxy == "early-stopping" and request.proxy_file):
            if not request.proxy_file:
                raise NasproxyError(f"--proxy {request.proxy} needs --proxy-file (made by `nasproxy condense`)")
            self.proxy = Proxy.load(request.proxy_file)
            proxy_hash = hashlib.sha256(Path(request.proxy_file).read_bytes()).hexdigest()[:16]
            made_by = self.proxy.meta.get("method")
            wanted = FILE_PROXY_METHODS.get(request.proxy)
            if wanted is not None and made_by != wanted:
                raise NasproxyError(
                    f"{request.proxy_file} was made by method {made_by!r}, not {wanted!r}; "
                    f"pass --proxy {_proxy_name_for(made_by)}"
                )
        dataset_name = self.proxy.meta["dataset"] if self.proxy is not None else request.dataset
        split = SplitSpec(holdout=request.holdout, seed=request.split_seed)
        if self.proxy is not None:
            split = SplitSpec(
                holdout=self.proxy.meta.get("holdout", request.holdout),
                seed=self.proxy.meta.get("split_seed", request.split_seed),
            )
            if request.dataset and dataset_key(request.dataset) != dataset_name:
                raise NasproxyError(
                    f"{request.proxy_file} is a proxy of {dataset_name!r}, not {request.dataset!r}; "
                    f"pass --dataset {dataset_name} or a proxy of {request.dataset}"
                )
        self.dataset = load_dataset(dataset_name, data_root=request.data_root, download=request.download, split=split)
        if self.proxy is not None:
            self.proxy.check_compatible(self.dataset)
        self.space = load_space(request.space)
        c, h, w = self.dataset.image_shape
        self.space.validate(channels=c, num_classes=self.dataset.num_classes, image_size=(h, w))
        proxy_images = len(self.proxy.images) if self.proxy is not None else request.ipc * self.dataset.num_classes
        self.protocol = Protocol(
            proxy=request.proxy,
            dataset=self.dataset.name,
            holdout=split.holdout,
            split_seed=split.seed,
            val_fingerprint=self.dataset.val_fingerprint,
            proxy_file=proxy_hash,
            proxy_images=proxy_images,
            epochs=request.epochs if request.epochs is not None else self.kind.default_epochs,
            repeats=request.repeats if request.repeats is not None else self.kind.default_repeats,
            batch_size=request.batch_size,
            lr=request.lr,
            precision=request.precision,
            seed=request.seed,
            score_test=request.score_test if request.score_test is not None else self.kind.scores_test,
        )
        if self.protocol.repeats < 1 or (self.kind.default_epochs and self.protocol.epochs < 1):
            raise NasproxyError("--repeats and --epochs must be at least 1")
        protocol_json = json.dumps(dataclasses.asdict(self.protocol), sort_keys=True)
        self.protocol_hash = hashlib.sha256(protocol_json.encode()).hexdigest()[:10]
        self.study_name = request.study or f"{self.dataset.name}-{self.space.name}-{request.proxy}-{self.protocol_hash}"
        from nasproxy.search._storage import storage_url_for

        self.storage_url = storage_url_for(request.storage, self.study_name)

    def flops(self, arch: str) -> int:
        """Forward FLOPs of one image through ``arch`` (counted once per process)."""
        from nasproxy.search._cost import candidate_flops

        if arch not in self._flops:
            self._flops[arch] = candidate_flops(
                self.space, self.space.get(arch), self.dataset.image_shape, self.dataset.num_classes
            )
        return self._flops[arch]

    def open_study(self, *, create: bool, sampler=None):
        from nasproxy.search._storage import retry_on_race

        # workers started at the same moment may race to create the study and its attributes
        return retry_on_race(lambda: self._open_study(create=create, sampler=sampler), self.storage_url)

    def _open_study(self, *, create: bool, sampler=None):
        import optuna

        from nasproxy.search._storage import open_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = open_storage(self.storage_url)
        if create:
            study = optuna.create_study(
                study_name=self.study_name, storage=storage, direction="maximize", load_if_exists=True, sampler=sampler
            )
        else:
            study = optuna.load_study(study_name=self.study_name, storage=storage, sampler=sampler)
        protocol = dataclasses.asdict(self.protocol)
        space = self.space.describe()
        attrs = study.user_attrs
        if "protocol" not in attrs:
            study.set_user_attr("protocol", protocol)
            study.set_user_attr("space", space)
            study.set_user_attr("nasproxy_version", __version__)
        elif attrs["protocol"] != protocol or attrs.get("space") != space:
            raise NasproxyError(
                f"study {self.study_name!r} in this storage was made with another protocol or space; "
                "pass a new --study name (or the original settings)"
            )
        if self.proxy is not None and "proxy_file" not in attrs:
            # what made the proxy file and at what cost, so that a report can add it to the search's cost
            meta = self.proxy.meta
            keys = ("method", "ipc", "iterations_done", "wall_seconds", "device", "seed")
            study.set_user_attr("proxy_file", {"path": str(self.request.proxy_file), **{k: meta.get(k) for k in keys}})
        return study


def _proxy_name_for(method: str | None) -> str:
    return "ours" if method == "dc" else str(method)


def plan_search(request: SearchRequest) -> tuple[Plan, _Context]:
    """Load and validate everything, create the study, and estimate the cost of what is left."""
    from nasproxy.search._cost import measured_flops_per_second, measured_step_seconds

    if request.sampler not in ("sweep", "tpe"):
        raise NasproxyError(f"unknown sampler {request.sampler!r}; choose sweep or tpe")
    ctx = _Context(request)
    space = ctx.space
    if request.sampler == "tpe" and (not hasattr(space, "axes") or request.only or request.sample):
        raise NasproxyError("--sampler tpe needs a grid space (built-in or YAML) and no --sample/--only-top")
    study = ctx.open_study(create=True)
    if request.only:
        unknown = [a for a in request.only if a not in {c.arch_id for c in space.candidates()}]
        if unknown:
            raise NasproxyError(f"{len(unknown)} architectures are not in space {space.name!r} (e.g. {unknown[0]})")
        targets = list(dict.fromkeys(request.only))
    elif request.sample is not None:
        if request.sample < 1:
            raise NasproxyError("--sample must be at least 1")
        targets = [c.arch_id for c in space.sample(request.sample, seed=request.sample_seed)]
    else:
        targets = [c.arch_id for c in space.candidates()]
    done_ids = completed_architectures(study)
    if request.sampler == "tpe":
        total = min(request.trials, len(space))
        done = min(total, len(done_ids))
        # TPE's picks are unknown in advance: price the remainder at the cost of a seeded sample of the space
        priced = [c.arch_id for c in space.sample(32, seed=0)]
        scale = (total - done) / len(priced)
    else:
        total, done = len(targets), sum(a in done_ids for a in targets)
        priced = [a for a in targets if a not in done_ids]
        scale = 1.0
    estimate = 0.0
    if total > done and ctx.kind.default_epochs:
        shape = ctx.dataset.image_shape
        speed = measured_flops_per_second(ctx.runtime, shape, ctx.dataset.num_classes, request.precision)
        p = ctx.protocol
        if request.proxy == "early-stopping":
            from nasproxy.search._proxies import early_stopping_steps

            steps, batch = early_stopping_steps(p)
            train_images = steps * batch
        else:
            n = len(ctx.dataset.train_images) if request.proxy == "full" else p.proxy_images
            steps = p.epochs * math.ceil(n / min(p.batch_size, n))
            train_images = p.epochs * n
        scored = len(ctx.dataset.val_images) + (len(ctx.dataset.test_images) if p.score_test else 0)
        # small networks on small batches are bound by per-step overheads (Python, dispatch, the optimizer),
        # not arithmetic: every SGD step and scoring batch also pays the step time of a minimal network
        overhead = measured_step_seconds(ctx.runtime, shape, ctx.dataset.num_classes)
        per_network_overhead = (steps + math.ceil(scored / 256)) * overhead
        for arch in priced:
            flops = ctx.flops(arch)
            estimate += scale * p.repeats * (flops * (3 * train_images + scored) / speed + per_network_overhead)
    from nasproxy.engine import device_name

    plan = Plan(
        request, ctx.study_name, ctx.storage_url, ctx.protocol, targets, total, done, estimate, device_name(ctx.device)
    )
    return plan, ctx


def completed_architectures(study, trials: list | None = None) -> dict[str, Any]:
    """arch id -> its first completed trial (by trial number); from ``trials`` where the caller has read them."""
    from optuna.trial import TrialState

    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    done: dict[str, Any] = {}
    complete = (t for t in trials if t.state == TrialState.COMPLETE)
    for t in sorted(complete, key=lambda t: t.number):
        arch = t.user_attrs.get("arch_id")
        if arch is not None and not t.user_attrs.get("duplicate_of"):
            done.setdefault(arch, t)
    return done


def _alive(trial, now: float) -> bool:
    attrs = trial.user_attrs
    if attrs.get("host") == socket.gethostname() and "pid" in attrs:
        try:
            os.kill(int(attrs["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
    # a trial another worker has just asked for has no attributes yet: its start time stands in for them
    started = trial.datetime_start.timestamp() if trial.datetime_start is not None else 0.0
    return now - float(attrs.get("heartbeat", started)) < STALE_SECONDS


def _fail_stale(study, trials) -> None:
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    now = time.time()
    for t in trials:
        if t.state == TrialState.RUNNING and not _alive(t, now):
            try:
                study._storage.set_trial_user_attr(t._trial_id, "failure", "worker died")
                study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            except (UpdateFinishedTrialError, RuntimeError, KeyError):
                pass  # another worker got there first


class _Heartbeat:
    def __init__(self, study, trial_id: int) -> None:
        self._study, self._trial_id = study, trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._study._storage.set_trial_user_attr(self._trial_id, "heartbeat", time.time())
            except Exception:  # noqa: BLE001 - a missed heartbeat only risks a re-run, never a loss
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def work(ctx: _Context, targets: list[str], *, worker: int = 0, on_done=None, on_progress=None) -> int:
    """Complete architectures until none is left; returns how many this worker completed. ``on_progress``
    hears how many of the search's architectures the study holds complete, whichever worker completed them.

    Sweeps take ``targets`` in order (worker 0) or at random (other workers); with ``--sampler tpe`` Optuna's
    TPE proposes architectures until ``--trials`` distinct ones are complete."""
    from optuna.trial import TrialState

    study = ctx.open_study(create=False, sampler=_sampler(ctx.request, worker))
    rng = random.Random(f"{socket.gethostname()}-{os.getpid()}-{worker}")
    completed = 0
    while True:
        trials = study.get_trials(deepcopy=False)
        _fail_stale(study, trials)
        now = time.time()
        done = completed_architectures(study, trials)
        if on_progress is not None:
            on_progress(_completed_count(ctx.request, done, targets))
        busy = {t.user_attrs.get("arch_id") for t in trials if t.state == TrialState.RUNNING and _alive(t, now)}
        if ctx.request.sampler == "tpe":
            if len(done) + len(busy - set(done)) >= min(ctx.request.trials, len(ctx.space)):
                return completed
            trial = study.ask(_distributions(ctx.space))
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
            arch = todo[0] if worker == 0 else rng.choice(todo)
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
        rival = _earlier_claim(study, arch, trial.number)
        if rival is not None:
            trial.set_user_attr("duplicate_of", rival)
            study.tell(trial, state=TrialState.FAIL)
            continue
        value = _score_trial(ctx, study, trial, arch)
        if value is None:
            continue
        completed += 1
        if on_done is not None:
            on_done(arch, value)


def _completed_count(request: SearchRequest, done: dict, targets: list[str]) -> int:
    """Architectures of this search complete in the study (TPE's are whichever it proposed)."""
    return len(done) if request.sampler == "tpe" else len(set(done) & set(targets))


def _score_trial(ctx: _Context, study, trial, arch: str) -> float | None:
    """Score ``arch`` in ``trial``; None when an earlier trial turned out to claim it too (this one steps back)."""
    from optuna.trial import TrialState

    cand = ctx.space.get(arch)
    try:
        with _Heartbeat(study, trial._trial_id):
            start = time.perf_counter()
            score = ctx.kind.score(ctx.space, cand, ctx.dataset, ctx.protocol, ctx.proxy, ctx.runtime)
            seconds = time.perf_counter() - start
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        raise
    c, h, w = ctx.dataset.image_shape
    net = ctx.space.build(cand.spec, channels=c, num_classes=ctx.dataset.num_classes, image_size=(h, w))
    record = {
        "spec": cand.spec,
        "proxy": ctx.request.proxy,
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
    # a second look before completing: a worker that asked for its trial just before this one may have
    # recorded the same architecture only after this one's first look (a fast score leaves that window open)
    rival = _earlier_claim(study, arch, trial.number)
    if rival is not None:
        trial.set_user_attr("duplicate_of", rival)
        study.tell(trial, state=TrialState.FAIL)
        return None
    study.tell(trial, score.value)
    return score.value


def _sampler(request: SearchRequest, worker: int):
    if request.sampler != "tpe":
        return None
    import optuna

    return optuna.samplers.TPESampler(seed=request.seed * 1009 + worker)


def _distributions(space) -> dict:
    from optuna.distributions import CategoricalDistribution

    return {axis: CategoricalDistribution(values) for axis, values in space.axes.items()}


def _earlier_claim(study, arch: str, number: int) -> int | None:
    from optuna.trial import TrialState

    now = time.time()
    for t in study.get_trials(deepcopy=False):
        if t.number >= number or t.user_attrs.get("arch_id") != arch or t.user_attrs.get("duplicate_of"):
            continue
        if t.state == TrialState.COMPLETE or (t.state == TrialState.RUNNING and _alive(t, now)):
            return t.number
    return None


def _worker_main(request: SearchRequest, worker: int, targets: list[str]) -> None:
    from nasproxy.engine import configure_process

    configure_process()  # a worker is a long-running entry point of its own
    ctx = _Context(request)
    work(ctx, targets, worker=worker)


def run_search(
    request: SearchRequest,
    *,
    workers: int = 1,
    progress: bool = True,
    plan: Plan | None = None,
    ctx: _Context | None = None,
) -> Path:
    """Complete every target architecture (in ``workers`` processes) and export the study to CSV."""
    if plan is None or ctx is None:
        plan, ctx = plan_search(request)
    if workers < 1:
        raise NasproxyError("--workers must be at least 1")
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

    def on_done(arch: str, value: float) -> None:
        best[0] = max(best[0], value)
        bar.set_postfix(best=f"{best[0]:.4f}")

    def on_progress(count: int) -> None:
        bar.update(min(count, plan.total) - bar.n)

    if left:
        if workers == 1:
            work(ctx, plan.targets, on_done=on_done, on_progress=on_progress)
        else:
            _run_workers(request, plan, ctx, workers, bar)
    bar.close()
    return export_study(ctx.open_study(create=False), EXPORT_DIR / f"{plan.study_name}.csv")


def _run_workers(request: SearchRequest, plan: Plan, ctx: _Context, workers: int, bar) -> None:
    import multiprocessing as mp

    threads = request.threads or max(1, (os.cpu_count() or 1) // workers)
    request = dataclasses.replace(request, threads=threads, storage=plan.storage_url, study=plan.study_name)
    spawn = mp.get_context("spawn")
    procs = [
        spawn.Process(target=_worker_main, args=(request, i + 1, plan.targets), daemon=False) for i in range(workers)
    ]
    for p in procs:
        p.start()
    study = ctx.open_study(create=False)
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(2.0)
            done = _completed_count(request, completed_architectures(study), plan.targets)
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


def read_arch_ids(path: str | Path) -> tuple[str, ...]:
    """Architecture ids listed in a text file, one per line (``#`` starts a comment)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise NasproxyError(f"cannot read the architecture list {path} ({exc.__class__.__name__})") from None
    ids = tuple(i for i in (line.split("#", 1)[0].strip() for line in lines) if i)
    if not ids:
        raise NasproxyError(f"{path} lists no architecture ids (one per line)")
    return ids


def top_architectures(sources: list[str], k: int, *, dataset: str, space: str) -> list[str]:
    """The union of the top-``k`` architectures of earlier searches, in source order.

    A source is a CSV written by ``nasproxy search``/``export``, or a proxy name whose newest export for
    this dataset and space is found in ``results/search``."""
    import pandas as pd

    chosen: list[str] = []
    for source in sources:
        path = Path(source)
        if not path.suffix == ".csv":
            matches = sorted(EXPORT_DIR.glob(f"{dataset}-{space}-{source}-*.csv"), key=lambda p: p.stat().st_mtime)
            if not matches:
                raise NasproxyError(
                    f"no finished search with proxy {source!r} on {dataset}/{space} in {EXPORT_DIR}; "
                    f"run `nasproxy search --space {space} --proxy {source}` first or pass its CSV"
                )
            path = matches[-1]
        if not path.exists():
            raise NasproxyError(f"{path} does not exist")
        frame = pd.read_csv(path)
        if "arch_id" not in frame or "value" not in frame:
            raise NasproxyError(f"{path} is not a nasproxy search export (needs arch_id and value columns)")
        chosen += frame.sort_values("value", ascending=False)["arch_id"].head(k).tolist()
    return list(dict.fromkeys(chosen))


def study_rows(study) -> list[dict[str, Any]]:
    rows = []
    for arch, t in completed_architectures(study).items():
        attrs = t.user_attrs
        row = {"arch_id": arch, "value": t.value, "trial": t.number}
        for key, value in attrs.items():
            if key in ("arch_id", "heartbeat", "host", "pid"):
                continue
            row[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
        rows.append(row)
    return rows


def export_study(study, path: Path) -> Path:
    """Write one row per completed architecture (duplicates dropped) to ``path``, atomically."""
    import pandas as pd

    from nasproxy._artifact import atomic_write_text

    frame = pd.DataFrame(study_rows(study))
    if len(frame):
        frame = frame.sort_values("value", ascending=False)
    atomic_write_text(path, frame.to_csv(index=False))
    return path
