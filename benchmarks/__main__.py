"""Speed and memory benchmarks: each nasproxy arm against a faithful baseline, in the same run.

    python -m benchmarks condense [--quick]     # DC seconds per outer iteration, 1 and 10 images per class
    python -m benchmarks condense --ipc 1 --iterations 2 --eval-models 1   # a smoke run (gpu.sh's rehearsal)
    python -m benchmarks dc-profile [--ipc 10]  # not a timing: where a DC outer iteration's time goes
    python -m benchmarks estimate               # not a timing: the re-fitted cost model replayed on a journal
    python -m benchmarks estimate-fresh         # the pre-run estimate against two fresh sweeps' measured time
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

import argparse
import datetime
import shlex
import sys
from pathlib import Path

import pandas as pd
import torch

from benchmarks._common import (
    CANDIDATE_REPEATS,
    CANDIDATE_SAMPLE,
    CONDENSE_EVAL_MODELS,
    EVALUATE_MODELS,
    REAL_BATCH,
    SWEEP_SAMPLE,
    _machine,
    _out_folder,
)
from benchmarks.checks import bench_candidate_precision, bench_ceiling
from benchmarks.estimate import bench_estimate, bench_estimate_fresh
from benchmarks.profile import bench_dc_profile
from benchmarks.sweep import bench_sweep
from benchmarks.timings import bench_candidate, bench_condense, bench_evaluate, bench_time_to_quality

BENCHES = {
    "condense": bench_condense,
    "candidate": bench_candidate,
    "evaluate": bench_evaluate,
    "time-to-quality": bench_time_to_quality,
    "candidate-precision": bench_candidate_precision,
    "ceiling": bench_ceiling,
    "sweep": bench_sweep,
    "dc-profile": bench_dc_profile,
    "estimate": bench_estimate,
    "estimate-fresh": bench_estimate_fresh,
}


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
        "--iterations",
        type=int,
        help="condense, dc-profile: outer iterations, the first a warm-up that is not counted (default 6 at 1 ipc "
        "and 2 at 10 ipc in condense, 4 in dc-profile; 3 with --quick)",
    )
    parser.add_argument(
        "--real-batch",
        type=int,
        default=REAL_BATCH,
        help=f"condense, dc-profile: real images per class in each matching step (default {REAL_BATCH}, the paper's; "
        "smaller only to rehearse, as gpu.sh does)",
    )
    parser.add_argument(
        "--eval-models",
        type=int,
        help=f"condense: networks trained on each arm's images for its accuracy (default {CONDENSE_EVAL_MODELS}; "
        "0: none, the accuracy columns stay empty)",
    )
    parser.add_argument(
        "--models", type=int, default=EVALUATE_MODELS, help=f"evaluate: evaluation models (default {EVALUATE_MODELS})"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        help="candidate, sweep: epochs per candidate (default 100, 20 with --quick); evaluate, condense: epochs "
        "of each evaluation network (default 300, 60 in evaluate with --quick). Fewer only to rehearse, as gpu.sh "
        "does; the CSV's name and rows say so",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help=f"candidate, sweep: networks per candidate (default {CANDIDATE_REPEATS}, the paper's R). Fewer only to "
        "rehearse, as gpu.sh does; the CSV's name and rows say so",
    )
    parser.add_argument("--seeds", type=int, default=10, help="candidate-precision: seeds per arm (default 10)")
    parser.add_argument(
        "--sample",
        type=int,
        help=f"candidate, sweep: paper720 architectures timed (seeded sample; default {CANDIDATE_SAMPLE} in candidate, "
        f"{SWEEP_SAMPLE} in sweep)",
    )
    parser.add_argument("--runs", type=int, default=1, help="candidate: runs of every arm, interleaved (default 1)")
    parser.add_argument(
        "--workers",
        type=int,
        action="append",
        default=[],
        help="sweep: this many workers on the device (repeatable; default 1)",
    )
    parser.add_argument(
        "--budget-seconds", type=float, help="sweep: start no architecture after this many seconds of a search"
    )
    parser.add_argument("--storage", help="estimate: the journal replayed (default the NAS experiment's)")
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
    if args.iterations is not None and args.iterations < 2:
        parser.error("--iterations: at least 2 (the first is a warm-up and is not counted)")
    if args.real_batch < 1:
        parser.error("--real-batch: at least 1")
    if args.eval_models is not None and args.eval_models < 0:
        parser.error("--eval-models: 0 or more")
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs: at least 1")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats: at least 1")
    args.names = args.names or [n for n in BENCHES if n not in ("sweep", "dc-profile", "estimate", "estimate-fresh")]
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
        only = f"-ipc{'-'.join(map(str, args.ipc))}" if args.ipc and name in ("condense", "dc-profile") else ""
        if name in ("condense", "dc-profile") and args.iterations is not None:
            only += f"-{args.iterations}iterations"
        if name in ("condense", "dc-profile") and args.real_batch != REAL_BATCH:
            only += f"-batch{args.real_batch}"
        if name == "condense" and args.eval_models is not None:
            only += f"-{args.eval_models}models"
        if name == "evaluate" and args.models != EVALUATE_MODELS and not args.quick:
            only = f"-{args.models}models"
        if name == "candidate" and args.sample not in (None, CANDIDATE_SAMPLE):
            only = f"-{args.sample}archs"
        if name == "candidate" and args.runs != 1:
            only += f"-{args.runs}runs"
        if name in ("candidate", "sweep", "evaluate", "condense") and args.epochs is not None:
            only += f"-{args.epochs}epochs"
        if name in ("candidate", "sweep") and args.repeats not in (None, CANDIDATE_REPEATS):
            only += f"-{args.repeats}repeats"
        path = out / f"{name}{only}{'-quick' if args.quick else ''}.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
        print(f"[bench] wrote {path}")


if __name__ == "__main__":
    main()
