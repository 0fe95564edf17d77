"""One benchmark arm per process, so each starts with a clean allocator and its own peak-memory reading.

Usage (from benchmarks/_common.run_arm): ``python -m benchmarks.arms ARM JSON_PARAMS``; prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from functools import partial

import torch

from benchmarks._common import REAL_BATCH


def _dataset():
    from nasproxy.data import load_dataset

    return load_dataset("fashion-mnist")


def _authors_builder(name, dataset):
    from benchmarks.baseline import authors_convnet

    c, h, w = dataset.image_shape
    return partial(authors_convnet, name, channels=c, num_classes=dataset.num_classes, image_size=(h, w))


def dc_baseline(
    ipc: int,
    iterations: int,
    seed: int = 0,
    real_batch: int = REAL_BATCH,
    seconds_budget: float | None = None,
    device: str = "cpu",
    **_,
):
    from benchmarks.baseline import dc_iterations

    ds = _dataset()
    times = []
    syn = dc_iterations(
        ds,
        _authors_builder("convnet", ds),
        ipc=ipc,
        iterations=iterations,
        seed=seed,
        real_batch=real_batch,
        on_iteration=lambda it, s: times.append(s),
        seconds_budget=seconds_budget,
        device=torch.device(device),
    )
    return {"seconds": times, "images": syn}


def dc_nasproxy(
    ipc: int,
    iterations: int,
    seed: int = 0,
    precision: str = "fp32",
    real_batch: int = REAL_BATCH,
    init: str = "noise",
    device: str = "cpu",
    backend: str = "auto",
    profile: bool = False,
    **_,
):
    """``profile``: also time the parts of every outer iteration after the first (with device syncs)."""
    from nasproxy._sections import Sections
    from nasproxy.condensers import CONDENSERS, RunContext
    from nasproxy.engine import resolve_device

    ds = _dataset()
    times, last = [], [time.perf_counter()]
    sections = Sections(resolve_device(device)) if profile else None

    def tick(it, loss):  # the loss is a float: the device has finished the iteration
        now = time.perf_counter()
        times.append(now - last[0])
        if sections is not None and len(times) == 1:  # the first iteration compiles and warms up
            sections.seconds.clear()
            sections.calls.clear()
        last[0] = time.perf_counter()

    condenser = CONDENSERS.get("dc").from_options(
        {"iterations": iterations, "precision": precision, "real_batch": real_batch, "init": init, "backend": backend}
    )
    context = RunContext(device=resolve_device(device), progress=False, on_iteration=tick, sections=sections)
    result = condenser.condense(ds, ipc=ipc, seed=seed, context=context)
    out = {"seconds": times, "images": result.images}
    if sections is not None:
        out["sections"] = {name: [sections.seconds[name], sections.calls[name]] for name in sections.seconds}
    return out


def _proxy_images(ipc: int, seed: int = 0):
    from nasproxy import condense

    ds = _dataset()
    proxy = condense(ds, method="random", ipc=ipc, seed=seed)
    return ds, proxy


def candidate_naive(archs: list[str], epochs: int, repeats: int, ipc: int = 10, device: str = "cpu", **_):
    from benchmarks.baseline import test_accuracy, train_epochs

    ds, proxy = _proxy_images(ipc)
    times, scores = [], []
    for arch in archs:
        start = time.perf_counter()
        val = []
        for r in range(repeats):
            torch.manual_seed(r)
            net = _authors_builder(arch, ds)().to(device)
            train_epochs(net, proxy.images, proxy.labels, epochs=epochs, lr=0.01, momentum=0.9, weight_decay=5e-4)
            val.append(test_accuracy(net, ds.val_images, ds.val_labels))
        times.append(time.perf_counter() - start)
        scores.append(sum(val) / len(val))
    return {"seconds": times, "val_mean": scores}


def candidate_nasproxy(
    archs: list[str],
    epochs: int,
    repeats: int,
    ipc: int = 10,
    precision: str = "fp32",
    device: str = "cpu",
    backend: str = "auto",
    winograd: bool = True,
    **_,
):
    from nasproxy.backends import resolve_backend
    from nasproxy.search.proxies import PROXIES, Protocol, Runtime

    if not winograd:
        from nasproxy.backends.cpu import _blocks

        _blocks._winograd_conv = lambda conv: conv
    from nasproxy.spaces import load_space

    ds, proxy = _proxy_images(ipc)
    space = load_space("paper720")
    protocol = Protocol(
        proxy="random",
        dataset=ds.name,
        holdout=5000,
        split_seed=0,
        val_fingerprint=ds.val_fingerprint,
        epochs=epochs,
        repeats=repeats,
        precision=precision,
    )
    times, scores = [], []
    runtime = Runtime(torch.device(device), resolve_backend(backend, torch.device(device)))
    for arch in archs:
        start = time.perf_counter()
        score = PROXIES.get("random").score(space, space.get(arch), ds, protocol, proxy, runtime)
        times.append(time.perf_counter() - start)
        scores.append(score.value)
    return {"seconds": times, "val_mean": scores}


def evaluate_naive(proxy_file: str, models: int, epochs: int, device: str = "cpu", **_):
    from benchmarks.baseline import test_accuracy, train_epochs
    from nasproxy import CondensedSet

    ds = _dataset()
    proxy = CondensedSet.load(proxy_file)
    accs, times = [], []
    for m in range(models):
        start = time.perf_counter()
        torch.manual_seed(m)
        net = _authors_builder("convnet", ds)().to(device)
        train_epochs(net, proxy.images, proxy.labels, epochs=epochs, lr=0.01, momentum=0.9, weight_decay=5e-4)
        accs.append(test_accuracy(net, ds.test_images, ds.test_labels))
        times.append(time.perf_counter() - start)
    return {"seconds": [sum(times)], "per_model_seconds": times, "accuracies": accs}


def evaluate_nasproxy(
    proxy_file: str,
    models: int,
    epochs: int,
    precision: str = "fp32",
    compile: bool | None = None,
    device: str = "cpu",
    backend: str = "auto",
    **_,
):
    from nasproxy import CondensedSet, TrainConfig, evaluate_condensed_set

    ds = _dataset()
    start = time.perf_counter()
    result = evaluate_condensed_set(
        CondensedSet.load(proxy_file),
        ds,
        num_models=models,
        config=TrainConfig(epochs=epochs, precision=precision, compile=compile, backend=backend),
        device=torch.device(device),
    )
    return {"seconds": [time.perf_counter() - start], "accuracies": list(result.accuracies)}


def _peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM starts afresh at exec; ru_maxrss would start from the
    parent's peak at fork and so report the benchmark driver's memory for a small arm."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


ARMS = {
    f.__name__: f
    for f in (dc_baseline, dc_nasproxy, candidate_naive, candidate_nasproxy, evaluate_naive, evaluate_nasproxy)
}

if __name__ == "__main__":
    from nasproxy.engine import configure_process

    arm, params = sys.argv[1], json.loads(sys.argv[2])
    # the baselines run as the authors' code would: no process settings; nasproxy's arms as the CLI runs
    configure_process(allocator=params.get("tuned_allocator", True), denormals=arm.endswith("_nasproxy"))
    out = ARMS[arm](**params)
    images = out.pop("images", None)
    if images is not None and params.get("save_images"):
        torch.save(images, params["save_images"])
    out["peak_rss_mb"] = _peak_rss_mb()
    if params.get("device", "cpu").startswith("cuda"):
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    out["threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(out))
