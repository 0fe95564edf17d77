"""How fast could any implementation be? The benchmarks' workloads in convolution and matrix FLOPs, against
the device's measured rates.

Every benchmark trains and scores the same networks on the same images with the same hyper-parameters in
every arm, so its convolution and matrix-multiply FLOPs are fixed; they are counted here with
``torch.utils.flop_counter`` on the real networks (forward, backward, and for DC the double backward of
gradient matching), and divided by the fastest rate measured on the device: a large fp32 matrix product
(the practical peak) and a convolution of the paper's ConvNet (128 to 128 channels, 16x16, 100 images,
forward and backward). A workload cannot run faster than that at the same FLOPs, so the baseline's measured
seconds divided by it bound every arm's speed-up. Normalisation, activation and pooling are not counted
(memory-bound, no multiply-adds), so the bound is generous.

The FLOPs are a direct convolution's, the baseline's: counted with nasproxy's Winograd convolutions and fused
first block off (the latter recomputes the first convolution, 9 multiply-adds per value, in every pass).
Those do a quarter of the multiply-adds of each 3x3 convolution past the first layer
(nasproxy/models/_winograd.py), so on CPUs nasproxy's fp32 arms are not held to this bound: it says how
far an implementation doing the baseline's arithmetic could go, and hence why a faster one needs less.

Rows join the other benchmarks' CSVs in the same folder by their ``setting``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

IMAGE = (1, 28, 28)  # Fashion-MNIST
CLASSES = 10
PROXY_IMAGES = 100  # a 10-ipc proxy: one SGD step per epoch at the batch size of 256
TEST_IMAGES = 10_000
VAL_IMAGES = 5_000
REAL_BATCH = 256  # DC's real images per class per matching step
_COUNT_BATCH = 8  # images per counted pass; FLOPs scale linearly with the batch
# candidate rows before this date also scored the 10,000 test images, which these counts leave out
CANDIDATE_VAL_ONLY_SINCE = "2026-11-26"


def _flops(fn: Callable[[], object]) -> int:
    # networks built here run on the aten backend: the counter sees the convolutions the baseline runs (the C++
    # kernels would be invisible to it)
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _net(arch: str, device: torch.device):
    from nasproxy.models import build_model

    torch.manual_seed(0)
    return build_model(arch, channels=IMAGE[0], num_classes=CLASSES, image_size=IMAGE[1:]).to(device)


def _batch(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, *IMAGE, generator=g).to(device), (torch.arange(n) % CLASSES).to(device)


def train_flops_per_image(arch: str, device: torch.device) -> float:
    """Forward and backward of one training step, per image (the input needs no gradient)."""
    net = _net(arch, device)
    x, y = _batch(_COUNT_BATCH, device)
    return _flops(lambda: F.cross_entropy(net(x), y).backward()) / _COUNT_BATCH


def score_flops_per_image(arch: str, device: torch.device) -> float:
    net = _net(arch, device).eval()
    x, _ = _batch(_COUNT_BATCH, device)
    with torch.inference_mode():
        return _flops(lambda: net(x)) / _COUNT_BATCH


def dc_iteration_flops(ipc: int, device: torch.device) -> float:
    """One DC outer iteration with the paper's loops: real-image class gradients, the synthetic images'
    class gradients with their graph, the matching loss's backward to the images, and the inner updates."""
    from nasproxy.condensers._matching import ClassGradients, gradient_distance
    from nasproxy.condensers.dc import paper_loops

    outer, inner = paper_loops(ipc)
    per_image = train_flops_per_image("convnet", device)
    net = _net("convnet", device)
    grads = ClassGradients(CLASSES, packed=False)
    x, _ = _batch(CLASSES * ipc, device)
    syn = x.view(CLASSES, ipc, *IMAGE).clone().requires_grad_(True)
    labels = torch.arange(CLASSES, device=device)[:, None].expand(CLASSES, ipc)
    real = _batch(CLASSES * _COUNT_BATCH, device)[0].view(CLASSES, _COUNT_BATCH, *IMAGE)
    g_real = [g.detach() for g in grads(net, real, labels[:, :1].expand(CLASSES, _COUNT_BATCH), create_graph=False)]

    def match() -> None:
        gradient_distance(g_real, grads(net, syn, labels, create_graph=True)).backward()

    matching = _flops(match)
    real_grads = CLASSES * REAL_BATCH * per_image
    updates = max(outer - 1, 0) * inner * CLASSES * ipc * per_image
    return outer * (real_grads + matching) + updates


def evaluate_flops(models: int, epochs: int, device: torch.device) -> float:
    return models * (
        epochs * PROXY_IMAGES * train_flops_per_image("convnet", device)
        + TEST_IMAGES * score_flops_per_image("convnet", device)
    )


def candidate_flops(archs: list[str], epochs: int, repeats: int, device: torch.device) -> float:
    return sum(
        repeats
        * (epochs * PROXY_IMAGES * train_flops_per_image(a, device) + VAL_IMAGES * score_flops_per_image(a, device))
        for a in archs
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_rate(fn: Callable[[], object], flops: float, device: torch.device, repeats: int = 5) -> float:
    """GFLOP/s of the fastest of ``repeats`` timed calls, after two warm-up calls."""
    fn()
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return flops / min(times) / 1e9


def _rates(dtype: torch.dtype, device: torch.device) -> tuple[float, float]:
    """GFLOP/s of a 4096^3 matrix product and of the paper ConvNet's main convolution (128 to 128 channels,
    16x16, 100 images, forward and both gradients)."""
    n = 4096
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    x = torch.randn(100, 128, 16, 16, device=device, dtype=dtype, requires_grad=True)
    w = torch.randn(128, 128, 3, 3, device=device, dtype=dtype, requires_grad=True)

    def conv_step() -> None:
        out = F.conv2d(x, w, padding=1)
        out.backward(torch.ones_like(out))

    return _best_rate(lambda: a @ b, 2 * n**3, device), _best_rate(conv_step, _flops(conv_step), device)


def measured_rates(device: torch.device) -> dict[str, float]:
    rates = {}
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        rates[f"gemm_{name}_gflops"], rates[f"conv_{name}_gflops"] = _rates(dtype, device)
    return rates


def _measured(out: Path, prefix: str, setting: str, seconds_column: str) -> list[dict]:
    """Baseline (first row) and fastest nasproxy arm of every CSV in ``out`` that ran ``setting``."""
    found = []
    for csv in sorted(out.glob(f"{prefix}*.csv")):
        frame = pd.read_csv(csv)
        if "setting" not in frame or seconds_column not in frame:
            continue
        rows = frame[frame["setting"] == setting]
        if prefix == "candidate" and "date" in rows:
            rows = rows[rows["date"] >= CANDIDATE_VAL_ONLY_SINCE]
        if len(rows) < 2:
            continue
        fastest = rows.iloc[1:].sort_values(seconds_column).iloc[0]
        found.append(
            {
                "source": csv.name,
                "baseline_seconds": float(rows.iloc[0][seconds_column]),
                "nasproxy_arm": fastest["arm"],
                "nasproxy_seconds": float(fastest[seconds_column]),
            }
        )
    return found


def ceiling_rows(
    out: Path,
    device: torch.device,
    *,
    evaluate_setting: tuple[str, int, int],
    condense_settings: list[tuple[str, int]],
    candidate_settings: list[tuple[str, list[str], int, int]],
) -> list[dict]:
    """One row per workload and per CSV in ``out`` that measured it (one without measurements if none)."""
    rates = measured_rates(device)
    print(f"[bench] rates (GFLOP/s): { {k: round(v) for k, v in rates.items()} }", flush=True)
    workloads = [
        ("evaluate", "evaluate", evaluate_setting[0], "median", partial(evaluate_flops, *evaluate_setting[1:])),
        *[
            ("dc_outer_iteration", "condense", s, "median", partial(dc_iteration_flops, ipc))
            for s, ipc in condense_settings
        ],
        *[
            ("nas_candidate", "candidate", s, "seconds_all_archs", partial(candidate_flops, archs, e, r))
            for s, archs, e, r in candidate_settings
        ],
    ]
    gemm = rates["gemm_fp32_gflops"]
    rows = []
    for benchmark, prefix, setting, column, count in workloads:
        flops = count(device)
        base = {
            "benchmark": benchmark,
            "setting": setting,
            "tflop": flops / 1e12,
            **rates,
            "min_seconds_at_gemm_fp32": flops / gemm / 1e9,
            "min_seconds_at_conv_fp32": flops / rates["conv_fp32_gflops"] / 1e9,
        }
        for m in _measured(out, prefix, setting, column) or [{}]:
            row = dict(base, **m)
            if m:
                row["max_speedup_at_gemm_fp32"] = m["baseline_seconds"] / base["min_seconds_at_gemm_fp32"]
                row["nasproxy_speedup"] = m["baseline_seconds"] / m["nasproxy_seconds"]
                row["baseline_gflops"] = flops / m["baseline_seconds"] / 1e9
                row["nasproxy_gflops"] = flops / m["nasproxy_seconds"] / 1e9
                row["nasproxy_fraction_of_gemm_fp32"] = row["nasproxy_gflops"] / gemm
            rows.append(row)
            shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items() if k not in rates}
            print(f"[bench] {shown}", flush=True)
    return rows
