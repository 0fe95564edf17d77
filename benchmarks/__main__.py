"""Speed and memory benchmarks: each nasproxy arm against a faithful baseline, in the same run.

    python -m benchmarks condense [--quick]     # DC seconds per outer iteration, 1 and 10 images per class
    python -m benchmarks candidate [--quick]    # seconds per NAS candidate (E=100, R=5, 10-ipc proxy)
    python -m benchmarks evaluate [--quick]     # evaluate: 20 models x 300 epochs on a 10-ipc proxy
    python -m benchmarks evaluate --models 3 --arm bf16   # fewer models; only the baseline and these arms
    python -m benchmarks time-to-quality        # 10 ipc: fastest recipe vs the baseline for the same wall time
    python -m benchmarks candidate-precision [--seeds N]  # not a timing: NAS candidates, fp32 vs bf16 over seeds
    python -m benchmarks ceiling [--out DIR]    # not a timing: each workload's FLOPs against the device's rates
    python -m benchmarks sweep --sample 100 --workers 8 --device cuda   # the search runner over paper720
    python -m benchmarks --device cuda ...      # the same on a GPU; results/bench/cuda/*.csv

Every arm runs in its own process (clean allocator, its own peak RSS and GPU memory). Results go to
results/bench/*.csv with the machine, torch version, device, thread count and the command line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

OUT = Path("results") / "bench"
PAPER720_SAMPLE_SEED = 0
CANDIDATE_SAMPLE = 2  # paper720 architectures timed per run on a CPU (a naive candidate takes minutes there)
EVALUATE_MODELS = 20  # the paper's evaluation protocol
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

    # whether bf16 wins depends on these: with AVX-512 BF16 and no AMX, bf16 steps were faster than fp32 on a
    # Zen 4 EPYC and slower on a Xeon (results/README.md)
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


def _evaluate_images(path: str, models: int, device: str) -> tuple[float, float]:
    """Test accuracy of a saved synthetic set (nasproxy's engine, same for every arm)."""
    from nasproxy import CondensedSet, TrainConfig, evaluate_proxy
    from nasproxy.data import load_dataset

    ds = load_dataset("fashion-mnist")
    images = torch.load(path, weights_only=True)
    ipc = len(images) // ds.num_classes
    proxy = CondensedSet(
        images,
        torch.arange(ds.num_classes).repeat_interleave(ipc),
        {"dataset": ds.name, "val_fingerprint": ds.val_fingerprint},
    )
    result = evaluate_proxy(proxy, ds, num_models=models, config=TrainConfig(), device=torch.device(device))
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
    return [s for s in [(1, 3 if args.quick else 6, 5), (10, 2, 5)] if s[0] in (args.ipc or [1, 10])]


def _condense_setting(ipc: int, iterations: int) -> str:
    return f"ipc={ipc}, paper hyper-parameters, K={iterations}"


def _candidate_setting(epochs: int, repeats: int, archs: list[str]) -> str:
    return f"E={epochs}, R={repeats}, 10-ipc proxy, 5000 val images, archs={';'.join(archs)}"


def _candidate_protocol(args: argparse.Namespace) -> tuple[int, int]:
    return (20, 5) if args.quick else (100, 5)


def _evaluate_protocol(args: argparse.Namespace) -> tuple[int, int]:
    return (2, 60) if args.quick else (args.models, 300)


def _evaluate_setting(models: int, epochs: int) -> str:
    return f"{models} models x {epochs} epochs, random 10-ipc proxy"


def _sampled_archs(n: int) -> list[str]:
    from nasproxy.spaces import load_space

    return [c.arch_id for c in load_space("paper720").sample(n, seed=PAPER720_SAMPLE_SEED)]


def bench_condense(args: argparse.Namespace) -> list[dict]:
    rows = []
    settings = _condense_settings(args)
    for ipc, iterations, eval_models in settings:
        arms = [
            ("baseline", "baseline (authors' structure, glibc default)", "dc_baseline", False, {}),
            ("allocator", "baseline + nasproxy allocator", "dc_baseline", True, {}),
            ("fp32", "nasproxy fp32", "dc_nasproxy", True, {"precision": "fp32"}),
            ("bf16", "nasproxy bf16", "dc_nasproxy", True, {"precision": "bf16"}),
        ]
        if args.device.startswith("cuda"):
            arms.append(("fp32-nographs", "nasproxy fp32, no CUDA graphs", "dc_nasproxy", True, {"env": NO_GRAPHS}))
        else:
            arms.append(("fp32-aten", "nasproxy fp32, ATen operators only", "dc_nasproxy", True, ATEN))
        base = None
        for label, arm, tuned, extra in _selected(arms, args.arm):
            with tempfile.TemporaryDirectory() as tmp:
                save = str(Path(tmp) / "syn.pt")
                res = run_arm(
                    arm,
                    tuned_allocator=tuned,
                    device=args.device,
                    ipc=ipc,
                    iterations=iterations,
                    save_images=save,
                    **extra,
                )
                secs = res["seconds"][1:]
                acc = _evaluate_images(save, eval_models, args.device)
            row = _row(
                "dc_outer_iteration",
                _condense_setting(ipc, iterations),
                label,
                "seconds per outer iteration",
                secs,
                res,
                base,
                first_iteration_seconds=res["seconds"][0],
                accuracy_after_K=acc[0],
                accuracy_std=acc[1],
                eval_models=eval_models,
            )
            base = base or row["median"]
            rows.append(row)
    return rows


def bench_candidate(args: argparse.Namespace) -> list[dict]:
    archs = _sampled_archs(args.sample)
    epochs, repeats = _candidate_protocol(args)
    rows, base, base_total = [], None, None
    arms = [
        ("naive", "naive loop (one model at a time, DataLoader, glibc default)", "candidate_naive", False, {}),
        ("fp32", "nasproxy fp32", "candidate_nasproxy", True, {"precision": "fp32"}),
        ("bf16", "nasproxy bf16", "candidate_nasproxy", True, {"precision": "bf16"}),
    ]
    if args.device.startswith("cuda"):
        arms += [
            ("fp32-nographs", "nasproxy fp32, no CUDA graphs", "candidate_nasproxy", True, {"env": NO_GRAPHS}),
            ("fp32-unpacked", "nasproxy fp32, no packing", "candidate_nasproxy", True, {"env": NO_PACKING}),
        ]
    else:
        arms.append(("fp32-aten", "nasproxy fp32, ATen operators only", "candidate_nasproxy", True, ATEN))
        arms.append(("fp32-direct", "nasproxy fp32, CPU kernels but no Winograd", "candidate_nasproxy", True, DIRECT))
    selected = _selected(arms, args.arm)
    # arms interleaved run by run, so that a drift of the machine's speed spreads over all of them
    results: list[list[dict]] = [[] for _ in selected]
    for _ in range(args.runs):
        for i, (_label, arm, tuned, extra) in enumerate(selected):
            results[i].append(
                run_arm(
                    arm, tuned_allocator=tuned, device=args.device, archs=archs, epochs=epochs, repeats=repeats, **extra
                )
            )
    for (label, *_), runs in zip(selected, results):
        per_arch = [statistics.median(r["seconds"][a] for r in runs) for a in range(len(archs))]
        row = _row(
            "nas_candidate",
            _candidate_setting(epochs, repeats, archs),
            label,
            "seconds per candidate (median over architectures, then over runs)",
            [statistics.median(r["seconds"]) for r in runs],
            {**runs[0], "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)},
            base,
            val_mean=statistics.fmean(runs[0]["val_mean"]),
            seconds_per_arch=json.dumps(dict(zip(archs, per_arch))),
            # what a search of exactly these architectures costs: heavy networks weigh in as they do there
            seconds_all_archs=sum(per_arch),
            speedup_all_archs=(base_total / sum(per_arch)) if base_total else 1.0,
        )
        base = base or row["median"]
        base_total = base_total or row["seconds_all_archs"]
        rows.append(row)
    return rows


def bench_evaluate(args: argparse.Namespace) -> list[dict]:
    from nasproxy import condense
    from nasproxy.data import load_dataset
    from nasproxy.engine import COMPILE_MIN_STEPS, use_compile, use_cuda_graph

    models, epochs = _evaluate_protocol(args)
    # the fp32 and bf16 arms leave compiling and CUDA graphs to the engine, which decides by the network-steps
    # (the 100-image proxy is one step per epoch at the batch size of 256)
    device = torch.device(args.device)

    def auto(precision: str) -> str:
        compiles = use_compile(None, models * epochs, COMPILE_MIN_STEPS, device, precision=precision)
        graphs = use_cuda_graph(None, epochs, device, compiles)
        return "compiled" if compiles else "eager, CUDA graphs" if graphs else "eager"

    rows, base = [], None
    arms = [
        ("naive", "naive loop (one model at a time, DataLoader, glibc default)", "evaluate_naive", False, {}),
        ("fp32", f"nasproxy fp32 ({auto('fp32')})", "evaluate_nasproxy", True, {"precision": "fp32"}),
        ("fp32-eager", "nasproxy fp32, eager", "evaluate_nasproxy", True, {"precision": "fp32", "compile": False}),
        ("bf16-eager", "nasproxy bf16, eager", "evaluate_nasproxy", True, {"precision": "bf16", "compile": False}),
        ("bf16", f"nasproxy bf16 ({auto('bf16')})", "evaluate_nasproxy", True, {"precision": "bf16"}),
    ]
    if args.device.startswith("cuda"):
        arms += [
            ("fp32-nographs", "nasproxy fp32, no CUDA graphs", "evaluate_nasproxy", True, {"env": NO_GRAPHS}),
            ("fp32-unpacked", "nasproxy fp32, no packing", "evaluate_nasproxy", True, {"env": NO_PACKING}),
            (
                "fp32-unpacked-nographs",
                "nasproxy fp32, no packing, no CUDA graphs",
                "evaluate_nasproxy",
                True,
                {"env": {**NO_GRAPHS, **NO_PACKING}},
            ),
        ]
    else:
        arms.append(("fp32-aten", "nasproxy fp32, ATen operators only", "evaluate_nasproxy", True, ATEN))
    with tempfile.TemporaryDirectory() as tmp:
        proxy_file = str(Path(tmp) / "random10.pt")
        condense(load_dataset("fashion-mnist"), method="random", ipc=10, seed=0).save(proxy_file)
        for label, arm, tuned, extra in _selected(arms, args.arm):
            res = run_arm(
                arm,
                tuned_allocator=tuned,
                device=args.device,
                proxy_file=proxy_file,
                models=models,
                epochs=epochs,
                **extra,
            )
            accs = res["accuracies"]
            row = _row(
                "evaluate",
                _evaluate_setting(models, epochs),
                label,
                "seconds per evaluation",
                res["seconds"],
                res,
                base,
                accuracy_mean=statistics.fmean(accs),
                accuracy_std=statistics.pstdev(accs),
            )
            base = base or row["median"]
            rows.append(row)
    return rows


TTQ_ITERATIONS = 20  # enough for nasproxy's recipe to reach 80 % at 10 ipc (80.05 %, results/bench)


def bench_time_to_quality(args: argparse.Namespace) -> list[dict]:
    """10 ipc: nasproxy's fastest recipe for K iterations, then the faithful baseline for the same wall time;
    both proxies evaluated by the same 300-epoch protocol (nasproxy's engine, fp32)."""
    ipc, iterations, models = (10, 2, 2) if args.quick else (10, TTQ_ITERATIONS, 10)
    recipe = {"precision": "bf16", "init": "real"}
    rows = []
    budget = None
    with tempfile.TemporaryDirectory() as tmp:
        for label, arm, tuned, extra in [
            (f"nasproxy DC, {iterations} iterations, init real, bf16", "dc_nasproxy", True, recipe),
            ("baseline DC (authors' structure), same wall time", "dc_baseline", False, {}),
        ]:
            save = str(Path(tmp) / f"{arm}.pt")
            if budget is not None:
                extra = {**extra, "seconds_budget": budget}
            res = run_arm(
                arm,
                tuned_allocator=tuned,
                device=args.device,
                ipc=ipc,
                iterations=iterations,
                save_images=save,
                **extra,
            )
            wall = sum(res["seconds"])
            budget = budget or wall
            acc = _evaluate_images(save, models, args.device)
            print(f"[bench]   {label}: {wall:.0f} s, {len(res['seconds'])} iterations, accuracy {acc[0]:.4f}")
            rows.append(
                {
                    "benchmark": "time_to_quality",
                    "setting": f"ipc={ipc}, Fashion-MNIST, ConvNet evaluation ({models} models x 300 epochs, fp32)",
                    "arm": label,
                    "condense_seconds": wall,
                    "iterations": len(res["seconds"]),
                    "accuracy_mean": acc[0],
                    "accuracy_std": acc[1],
                    "eval_models": models,
                    "peak_rss_mb": round(res["peak_rss_mb"]),
                    "threads": res["threads"],
                }
            )
    return rows


def bench_candidate_precision(args: argparse.Namespace) -> list[dict]:
    """Not a timing: is bf16 training of NAS candidates the same as fp32 within seed noise? The candidate
    protocol (100 epochs on a random 10-ipc proxy, 5,000 validation images), ``--seeds`` networks per
    architecture and precision; one row per (architecture, seed, precision)."""
    from functools import partial

    from benchmarks.arms import _proxy_images
    from nasproxy import TrainConfig
    from nasproxy.engine import accuracy, train_from_scratch
    from nasproxy.spaces import load_space

    ds, proxy = _proxy_images(10)
    device = torch.device(args.device)
    images, labels = proxy.images.to(device), proxy.labels.to(device)
    val_images, val_labels = ds.val_images.to(device), ds.val_labels.to(device)
    space = load_space("paper720")
    c, h, w = ds.image_shape
    rows = []
    for arch in PRECISION_ARCHS:
        build = partial(space.build, space.get(arch).spec, channels=c, num_classes=ds.num_classes, image_size=(h, w))
        for precision in ("fp32", "bf16"):
            config = TrainConfig(epochs=20 if args.quick else 100, precision=precision)
            nets = train_from_scratch(build, images, labels, config, seeds=range(args.seeds))
            accs = accuracy(nets, val_images, val_labels, precision=precision)
            print(f"[bench] {arch} {precision}: mean {sum(accs) / len(accs):.4f}", flush=True)
            rows += [{"arch": arch, "seed": s, "precision": precision, "val_accuracy": a} for s, a in enumerate(accs)]
    return rows


def bench_ceiling(args: argparse.Namespace) -> list[dict]:
    """Not a timing of nasproxy: each workload's convolution and matrix FLOPs against the device's measured
    rates, joined with the measurements in the output folder (``benchmarks/ceiling.py``)."""
    from benchmarks.ceiling import ceiling_rows

    out = _out_folder(args)
    models, epochs = _evaluate_protocol(args)
    cand_epochs, repeats = _candidate_protocol(args)
    # the samples measured in this folder, and the one --sample names
    samples = {_candidate_setting(cand_epochs, repeats, _sampled_archs(args.sample))}
    prefix = _candidate_setting(cand_epochs, repeats, [])
    for csv in out.glob("candidate*.csv"):
        frame = pd.read_csv(csv)
        if "setting" in frame:
            samples |= {s for s in frame["setting"] if s.startswith(prefix)}
    return ceiling_rows(
        out,
        torch.device(args.device),
        evaluate_setting=(_evaluate_setting(models, epochs), models, epochs),
        condense_settings=[(_condense_setting(ipc, k), ipc) for ipc, k, _ in _condense_settings(args)],
        candidate_settings=[(s, s[len(prefix) :].split(";"), cand_epochs, repeats) for s in sorted(samples)],
    )


BENCHES = {
    "condense": bench_condense,
    "candidate": bench_candidate,
    "evaluate": bench_evaluate,
    "time-to-quality": bench_time_to_quality,
    "candidate-precision": bench_candidate_precision,
    "ceiling": bench_ceiling,
    "sweep": lambda args: _sweep(args),
}


def _sweep(args: argparse.Namespace) -> list[dict]:
    from benchmarks.sweep import bench_sweep

    return bench_sweep(args)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHES)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer iterations/epochs (labelled in the CSV)")
    parser.add_argument(
        "--ipc", type=int, action="append", choices=[1, 10], help="condense: only these images per class (repeatable)"
    )
    parser.add_argument(
        "--models", type=int, default=EVALUATE_MODELS, help=f"evaluate: evaluation models (default {EVALUATE_MODELS})"
    )
    parser.add_argument("--seeds", type=int, default=10, help="candidate-precision: seeds per arm (default 10)")
    parser.add_argument(
        "--sample",
        type=int,
        default=CANDIDATE_SAMPLE,
        help=f"candidate: paper720 architectures timed (seeded sample, default {CANDIDATE_SAMPLE})",
    )
    parser.add_argument("--runs", type=int, default=1, help="candidate: runs of every arm, interleaved (default 1)")
    parser.add_argument(
        "--workers", type=int, action="append", default=[], help="sweep: also this many workers on the device"
    )
    parser.add_argument("--space", default="paper720", help="sweep: the search space (default paper720)")
    parser.add_argument(
        "--baseline-archs", type=int, default=5, help="sweep: architectures the authors'-style loop times (default 5)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--out", type=Path, help="where the CSVs go (default results/bench, results/bench/cuda)")
    parser.add_argument(
        "--arm", action="append", help="condense/candidate/evaluate: run only these arms and the baseline (repeatable)"
    )
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    args.names = args.names or [n for n in BENCHES if n != "sweep"]
    if "sweep" in args.names and args.sample == CANDIDATE_SAMPLE:
        args.sample = 100  # the sweep extrapolates from at least 100 architectures
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is visible")
    out = _out_folder(args)
    out.mkdir(parents=True, exist_ok=True)
    if device.type == "cpu":
        # build the C++ extensions once, as on a user's first run; every arm then loads them from disk
        from nasproxy.backends import build_cpu_kernels

        build_cpu_kernels()
    stamp = {
        "machine": _machine(),
        "torch": torch.__version__,
        "device": f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "cpu",
        "date": datetime.date.today().isoformat(),
        "command": "python -m benchmarks " + shlex.join(sys.argv[1:]),
    }
    for name in args.names:
        rows = [{**row, **stamp} for row in BENCHES[name](args)]
        only = f"-ipc{'-'.join(map(str, args.ipc))}" if args.ipc and name == "condense" else ""
        if name == "evaluate" and args.models != EVALUATE_MODELS and not args.quick:
            only = f"-{args.models}models"
        if name == "candidate" and args.sample != CANDIDATE_SAMPLE:
            only = f"-{args.sample}archs"
        if name == "candidate" and args.runs != 1:
            only += f"-{args.runs}runs"
        path = out / f"{name}{only}{'-quick' if args.quick else ''}.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
        print(f"[bench] wrote {path}")


if __name__ == "__main__":
    main()
