"""The whole-space benchmark: ``nasproxy search`` (the real runner, its workers and storage) over a seeded
sample of paper720 (``--space``) at the paper's protocol (E = 100, R = 5, 10-ipc proxy, 5,000 validation
images scored), with each ``--workers`` W (default 1) on one device (W candidates in flight), against the
authors'-style loop on a few of the same architectures.

Every arm's time is extrapolated to the whole space (``seconds_720``: all 720 architectures of paper720) by
the FLOP model (a candidate's work is its forward FLOPs per image times the same images for every
candidate), unless the sample is the whole space: the CSV's ``seconds_720_kind`` and ``extrapolated`` say
which. ``--budget-seconds S`` stops each search from starting architectures after S seconds (a lent GPU's
stage limit); a row then counts, and extrapolates from, the architectures that finished. Rows go to
``sweep.csv`` with the columns ``architectures``, ``seconds``, ``seconds_720``, ``seconds_720_kind``,
``device``, ``arm``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import SWEEP_SAMPLE, _candidate_protocol, run_arm

ROOT = Path(__file__).resolve().parents[1]


def _flops(archs: list[str], space_name: str) -> int:
    from nasproxy.search._cost import candidate_flops
    from nasproxy.spaces import load_space

    space = load_space(space_name)
    return sum(candidate_flops(space, space.get(a), (1, 28, 28), 10) for a in archs)


def _env() -> dict:
    """The repository first on the path, before what the caller had (packages carried to a bare machine)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def _search(args, proxy: Path, workers: int, folder: Path, epochs: int, repeats: int) -> tuple[float, list[str]]:
    """Seconds of one ``nasproxy search`` and the architectures it completed (all of the sample, unless
    ``--budget-seconds`` stopped it first)."""
    from nasproxy.search import completed_architectures
    from nasproxy.search._storage import open_storage

    devices = ",".join([args.device] * workers)
    storage = folder / f"w{workers}.journal"
    cmd = [
        sys.executable, "-m", "nasproxy.cli", "search", "--space", args.space, "--proxy", "random",
        "--proxy-file", str(proxy), "--sample", str(args.sample or SWEEP_SAMPLE), "--sample-seed", "0",
        "--epochs", str(epochs), "--repeats", str(repeats), "--storage", str(storage), "--workers", str(workers),
        "--devices", devices, "-q",
    ]  # fmt: skip
    if args.budget_seconds:
        cmd += ["--hours", f"{args.budget_seconds / 3600:.6f}"]
    start = time.perf_counter()
    code = subprocess.run(cmd, cwd=folder, env=_env()).returncode
    seconds = time.perf_counter() - start
    if code not in (0, 75):  # 75: the budget ran out first
        raise SystemExit(f"the sweep's search failed (exit {code})")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = open_storage(str(storage))
    (summary,) = optuna.get_all_study_summaries(store)
    done = completed_architectures(optuna.load_study(study_name=summary.study_name, storage=store))
    return seconds, sorted(done)


def bench_sweep(args: argparse.Namespace) -> list[dict]:
    from nasproxy import condense, load_dataset
    from nasproxy.spaces import load_space

    epochs, repeats = _candidate_protocol(args)
    space = load_space(args.space)
    sample = [c.arch_id for c in space.sample(args.sample or SWEEP_SAMPLE, seed=0)]
    flops_720 = _flops([c.arch_id for c in space.candidates()], args.space)
    whole = len(sample) == len(space)
    rows = []

    def row(arm: str, architectures: int, seconds: float, flops: int, workers: int) -> dict:
        return {
            "architectures": architectures,
            "seconds": round(seconds, 1),
            "seconds_720": round(seconds * flops_720 / flops, 1) if flops else float("nan"),
            "seconds_720_kind": "measured" if architectures == len(space) else "extrapolated (FLOP model)",
            "extrapolated": architectures != len(space),
            "space": args.space,
            "device": args.device,
            "arm": arm,
            "workers": workers,
            "epochs": epochs,
            "repeats": repeats,
            "flops_per_image_measured": flops,
            "flops_per_image_720": flops_720,
        }

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        proxy = folder / "random-ipc10.pt"
        condense(load_dataset("fashion-mnist"), method="random", ipc=10).save(proxy)
        for workers in dict.fromkeys(args.workers or [1]):
            seconds, done = _search(args, proxy, workers, folder, epochs, repeats)
            print(f"[bench] sweep nasproxy, {workers} worker(s): {seconds:.1f} s for {len(done)} architectures")
            rows.append(row(f"nasproxy, {workers} worker(s)", len(done), seconds, _flops(done, args.space), workers))
    # the authors'-style loop, one candidate at a time, on the first architectures of the same sample

    few = sample[: min(len(sample), args.baseline_archs)]
    result = run_arm(
        "candidate_naive", tuned_allocator=False, device=args.device, archs=few, epochs=epochs, repeats=repeats
    )
    rows.append(row("naive loop (authors' structure)", len(few), sum(result["seconds"]), _flops(few, args.space), 1))
    if whole:
        print("[bench] sweep: the whole space was measured")
    print(json.dumps(rows, indent=1))
    return rows
