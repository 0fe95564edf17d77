"""The timings: each nasproxy arm against the faithful baseline in the same run (condense, candidate,
evaluate), and time to quality."""

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from benchmarks._common import (
    ATEN,
    DIRECT,
    EVALUATE_EPOCHS,
    NO_GRAPHS,
    NO_PACKING,
    _candidate_protocol,
    _candidate_setting,
    _condense_setting,
    _condense_settings,
    _evaluate_images,
    _evaluate_protocol,
    _evaluate_setting,
    _row,
    _sampled_archs,
    _selected,
    run_arm,
)


def bench_condense(args: argparse.Namespace) -> list[dict]:
    rows = []
    settings = _condense_settings(args)
    epochs = args.epochs or EVALUATE_EPOCHS  # of each network that gives an arm its accuracy
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
                    real_batch=args.real_batch,
                    save_images=save,
                    **extra,
                )
                secs = res["seconds"][1:]
                acc = _evaluate_images(save, eval_models, args.device, epochs) if eval_models else (None, None)
            row = _row(
                "dc_outer_iteration",
                _condense_setting(ipc, iterations, args.real_batch),
                label,
                "seconds per outer iteration",
                secs,
                res,
                base,
                first_iteration_seconds=res["seconds"][0],
                accuracy_after_K=acc[0],
                accuracy_std=acc[1],
                eval_models=eval_models,
                eval_epochs=epochs,
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
