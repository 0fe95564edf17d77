"""The whole-space benchmark: ``nasproxy search`` (the real runner, its workers and storage) over a seeded
sample of paper720 (``--space``) at the paper's protocol (E = 100, R = 5, 10-ipc proxy, 5,000 validation
images scored), with 1 and with W workers on one device, against the authors'-style loop on a few of the same
architectures.

Every arm's time is extrapolated to the whole space (``seconds_720``: all 720 architectures of paper720) by
the FLOP model (a candidate's work is its forward FLOPs per image times the same images for every
candidate), unless the sample is the whole space: the CSV's ``seconds_720_kind`` says which. Rows go to
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

ROOT = Path(__file__).resolve().parents[1]


def _flops(archs: list[str], space_name: str) -> int:
    from nasproxy.search._cost import candidate_flops
    from nasproxy.spaces import load_space

    space = load_space(space_name)
    return sum(candidate_flops(space, space.get(a), (1, 28, 28), 10) for a in archs)


def _search(args, proxy: Path, workers: int, folder: Path, epochs: int, repeats: int) -> float:
    devices = ",".join([args.device] * workers)
    cmd = [
        sys.executable, "-m", "nasproxy.cli", "search", "--space", args.space, "--proxy", "random",
        "--proxy-file", str(proxy), "--sample", str(args.sample), "--sample-seed", "0", "--epochs", str(epochs),
        "--repeats", str(repeats), "--storage", str(folder / f"w{workers}.journal"), "--workers", str(workers),
        "--devices", devices, "-q",
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=folder, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def bench_sweep(args: argparse.Namespace) -> list[dict]:
    from nasproxy.spaces import load_space

    epochs, repeats = (20, 5) if args.quick else (100, 5)
    space = load_space(args.space)
    sample = [c.arch_id for c in space.sample(args.sample, seed=0)]
    flops_sample, flops_720 = _flops(sample, args.space), _flops([c.arch_id for c in space.candidates()], args.space)
    whole = len(sample) == len(space)
    rows = []

    def row(arm: str, architectures: int, seconds: float, flops: int, workers: int) -> dict:
        return {
            "architectures": architectures,
            "seconds": round(seconds, 1),
            "seconds_720": round(seconds * flops_720 / flops, 1),
            "seconds_720_kind": "measured" if architectures == len(space) else "extrapolated (FLOP model)",
            "space": args.space,
            "device": args.device,
            "arm": arm,
            "workers": workers,
            "epochs": epochs,
            "repeats": repeats,
            "flops_per_image_sample": flops,
            "flops_per_image_720": flops_720,
        }

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        proxy = folder / "random-ipc10.pt"
        condense = [sys.executable, "-m", "nasproxy.cli", "condense", "--method", "random", "--ipc", "10"]
        subprocess.run([*condense, "--out", str(proxy), "-q"], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        for workers in dict.fromkeys([1, *args.workers]):
            seconds = _search(args, proxy, workers, folder, epochs, repeats)
            print(f"[bench] sweep nasproxy, {workers} worker(s): {seconds:.1f} s for {len(sample)} architectures")
            rows.append(row(f"nasproxy, {workers} worker(s)", len(sample), seconds, flops_sample, workers))
    # the authors'-style loop, one candidate at a time, on the first architectures of the same sample
    from benchmarks._common import run_arm

    few = sample[: min(len(sample), args.baseline_archs)]
    result = run_arm(
        "candidate_naive", tuned_allocator=False, device=args.device, archs=few, epochs=epochs, repeats=repeats
    )
    rows.append(row("naive loop (authors' structure)", len(few), sum(result["seconds"]), _flops(few, args.space), 1))
    if whole:
        print("[bench] sweep: the whole space was measured")
    print(json.dumps(rows, indent=1))
    return rows
