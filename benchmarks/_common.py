"""What every benchmark shares: the output folder, the machine stamp, running one arm in its own process,
the CSV row, and the names of the settings measured."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from nasproxy import TrainConfig
from nasproxy.condensers.dc import DatasetCondensation

OUT = Path("results") / "bench"
PAPER720_SAMPLE_SEED = 0
CANDIDATE_SAMPLE = 2  # paper720 architectures timed per run on a CPU (a naive candidate takes minutes there)
CANDIDATE_REPEATS = 5  # the paper's R: networks trained per NAS candidate
SWEEP_SAMPLE = 100  # the sweep extrapolates to the whole space from at least this many
EVALUATE_MODELS = 20  # the paper's evaluation protocol
EVALUATE_EPOCHS = TrainConfig().epochs  # each evaluation network's epochs (the paper's 300)
CONDENSE_EVAL_MODELS = 5  # networks that give each condense arm its accuracy
REAL_BATCH = DatasetCondensation.Config().real_batch  # DC's real images per class per matching step (the paper's)
# arms that matter on CUDA alone (the engine never captures graphs or packs for training on CPUs): the
# engine's CUDA defaults with one switch turned off each
NO_GRAPHS = {"NASPROXY_CUDA_GRAPHS": "0"}
NO_PACKING = {"NASPROXY_CUDA_PACK_MAX_FLOPS": "0"}
# on CPUs: nasproxy with ATen's operators only, i.e. the baseline's arithmetic (the fp32 arm runs its own C++
# kernels: the fused first block, nasproxy/backends/cpu/_first_block.py, and 3x3 convolutions past the first
# layer as Winograd F(4x4, 3x3), nasproxy/backends/cpu/_winograd.py)
ATEN = {"backend": "aten"}
# the CPU backend with direct convolutions: what the Winograd convolutions add (speed) and cost (memory)
DIRECT = {"winograd": False}
PRECISION_ARCHS = ["convnet-w128-d1-instance-leakyrelu-max", "convnet-w128-d2-layer-leakyrelu-max"]


def _machine() -> str:
    from nasproxy._machine import cpu_model, cpuinfo_field

    # whether bf16 wins depends on these ISA flags (results/bench/engine-choices.md)
    flags = set((cpuinfo_field("flags") or "").split())
    isa = ", ".join(f for f in ("avx512_bf16", "amx_bf16") if f in flags) or "no bf16 ISA"
    cpu = f"{cpu_model()} ({isa})"
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores{gpu}"


def _out_folder(args: argparse.Namespace) -> Path:
    return args.out or (OUT / "cuda" if args.device.startswith("cuda") else OUT)


def run_arm(arm: str, *, tuned_allocator: bool, device: str, env: dict | None = None, **params) -> dict:
    """Run one arm in a fresh process; ``env`` adds environment variables (the engine's switches)."""
    shown = f" env={env}" if env else ""
    print(f"[bench] {arm} {params} tuned_allocator={tuned_allocator} device={device}{shown}", flush=True)
    params = {**params, "device": device, "tuned_allocator": tuned_allocator}
    cmd = [sys.executable, "-m", "benchmarks.arms", arm, json.dumps(params)]
    with tempfile.TemporaryDirectory() as compile_cache:  # every arm compiles cold, as a first run would
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "TORCHINDUCTOR_CACHE_DIR": compile_cache,
            **(env or {}),
        }
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark arm {arm} failed:\n{proc.stderr[-3000:]}")
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    gpu = f", GPU {result['peak_gpu_mb']:.0f} MB" if "peak_gpu_mb" in result else ""
    print(f"[bench]   -> {result['seconds']} (peak {result['peak_rss_mb']:.0f} MB{gpu})", flush=True)
    return result


def _evaluate_images(path: str, models: int, device: str, epochs: int = EVALUATE_EPOCHS) -> tuple[float, float]:
    """Test accuracy of a saved synthetic set (nasproxy's engine, same for every arm)."""
    from nasproxy import CondensedSet, evaluate_condensed_set
    from nasproxy.data import load_dataset

    ds = load_dataset("fashion-mnist")
    images = torch.load(path, weights_only=True)
    ipc = len(images) // ds.num_classes
    condensed = CondensedSet(
        images,
        torch.arange(ds.num_classes).repeat_interleave(ipc),
        {"dataset": ds.name, "val_fingerprint": ds.val_fingerprint},
    )
    config = TrainConfig(epochs=epochs)
    result = evaluate_condensed_set(condensed, ds, num_models=models, config=config, device=torch.device(device))
    return result.mean, result.std


def _row(benchmark, setting, arm, metric, seconds, result, baseline_median=None, **extra) -> dict:
    med = statistics.median(seconds)
    return {
        "benchmark": benchmark,
        "setting": setting,
        "arm": arm,
        "metric": metric,
        "median": med,
        "min": min(seconds),
        "max": max(seconds),
        "runs": len(seconds),
        "speedup_vs_baseline": (baseline_median / med) if baseline_median else 1.0,
        "peak_rss_mb": round(result["peak_rss_mb"]),
        **({"peak_gpu_mb": round(result["peak_gpu_mb"])} if "peak_gpu_mb" in result else {}),
        "threads": result["threads"],
        **extra,
    }


def _selected(arms: list[tuple], wanted: list[str] | None) -> list[tuple]:
    """The baseline (first) arm, and the others whose key is in ``wanted`` (all when None)."""
    unknown = set(wanted or ()) - {a[0] for a in arms[1:]}
    if unknown:
        raise SystemExit(f"unknown arm {', '.join(sorted(unknown))}; choose from {', '.join(a[0] for a in arms[1:])}")
    return [a[1:] for i, a in enumerate(arms) if i == 0 or wanted is None or a[0] in wanted]


def _condense_settings(args: argparse.Namespace) -> list[tuple[int, int, int]]:
    """(ipc, outer iterations, evaluation models); the first iteration warms up (and compiles) and is not
    counted: it is reported as first_iteration_seconds."""
    models = CONDENSE_EVAL_MODELS if args.eval_models is None else args.eval_models
    settings = [(1, args.iterations or (3 if args.quick else 6), models), (10, args.iterations or 2, models)]
    return [s for s in settings if s[0] in (args.ipc or [1, 10])]


def _dc_setting(ipc: int, real_batch: int = REAL_BATCH) -> str:
    batch = "" if real_batch == REAL_BATCH else f" but {real_batch} real images per class"
    return f"ipc={ipc}, paper hyper-parameters{batch}"


def _condense_setting(ipc: int, iterations: int, real_batch: int = REAL_BATCH) -> str:
    return f"{_dc_setting(ipc, real_batch)}, K={iterations}"


def _candidate_setting(epochs: int, repeats: int, archs: list[str]) -> str:
    return f"E={epochs}, R={repeats}, 10-ipc proxy, 5000 val images, archs={';'.join(archs)}"


def _candidate_protocol(args: argparse.Namespace) -> tuple[int, int]:
    """(epochs, repeats) of a NAS candidate: the paper's E = 100, R = 5."""
    return args.epochs or (20 if args.quick else 100), args.repeats or CANDIDATE_REPEATS


def _evaluate_protocol(args: argparse.Namespace) -> tuple[int, int]:
    return (2, args.epochs or 60) if args.quick else (args.models, args.epochs or EVALUATE_EPOCHS)


def _evaluate_setting(models: int, epochs: int) -> str:
    return f"{models} models x {epochs} epochs, random 10-ipc proxy"


def _sampled_archs(n: int | None) -> list[str]:
    from nasproxy.spaces import load_space

    n = CANDIDATE_SAMPLE if n is None else n
    return [c.arch_id for c in load_space("paper720").sample(n, seed=PAPER720_SAMPLE_SEED)]
