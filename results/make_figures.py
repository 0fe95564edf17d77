"""Draw the figures of results/ from its CSVs: `python results/make_figures.py` (from the repository root)."""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent


def _save(fig, out: Path) -> None:
    """PNG and PDF, without the PDF's creation date, so that re-drawing unchanged data changes no file."""
    fig.savefig(out.with_suffix(".png"), dpi=150)
    fig.savefig(out.with_suffix(".pdf"), metadata={"CreationDate": None})
    plt.close(fig)


def accuracy_bars(csv: Path, out: Path, title: str, *, label_by_file: bool = False) -> None:
    frame = pd.read_csv(csv)
    if label_by_file:
        labels = [f"{Path(p).stem}\n{t:.0f} s to condense" for p, t in zip(frame["proxy"], frame["condense_seconds"])]
    else:
        labels = [
            f"{m}\nipc={i}, K={k if k == k else '-'}"
            for m, i, k in zip(frame["method"], frame["ipc"], frame["iterations"])
        ]
    fig, ax = plt.subplots(figsize=(1.6 * len(frame) + 1.5, 3.2))
    ax.bar(
        range(len(frame)),
        100 * frame["mean"],
        yerr=100 * frame["std"],
        capsize=4,
        color=["tab:blue" if m == "dc" else "tab:gray" for m in frame["method"]],
    )
    for i, (m, s) in enumerate(zip(frame["mean"], frame["std"])):
        ax.text(i, 100 * m + 100 * s + 0.5, f"{100 * m:.1f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(frame)), labels, fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, out)


def bench_bars(csv: Path, out: Path) -> None:
    frame = pd.read_csv(csv)
    settings = list(dict.fromkeys(frame["setting"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(6.5 * len(settings), 3.4), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        rows = frame[frame["setting"] == setting]
        labels = [a.replace(" (", "\n(") for a in rows["arm"]]
        if "run" in rows and rows["run"].nunique() > 1:  # the same arms measured on several fresh machines
            labels = [f"{label} [run {run}]" for label, run in zip(labels, rows["run"])]
        ax.barh(range(len(rows)), rows["median"], color="tab:blue")
        ax.set_yticks(range(len(rows)), labels, fontsize=7)
        for i, (m, s) in enumerate(zip(rows["median"], rows["speedup_vs_baseline"])):
            ax.text(m, i, f" {m:.3g} s  ({s:.2f}x)", va="center", fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(rows["metric"].iloc[0], fontsize=8)
        ax.set_title(re.sub(r"archs=([^,]*)", lambda m: f"{m[1].count(';') + 1} paper720 archs", setting), fontsize=8)
        ax.set_xlim(0, rows["median"].max() * 1.45)
    fig.tight_layout()
    _save(fig, out)


def candidate_speedup_by_flops(csv: Path, out: Path) -> None:
    """Speed-up of each nasproxy arm over the baseline per architecture, against its forward FLOPs."""
    from nasproxy.models import build_model

    frame = pd.read_csv(csv)
    per_arch = [json.loads(s) for s in frame["seconds_per_arch"]]
    archs = list(per_arch[0])
    flops = [build_model(a, channels=1, num_classes=10, image_size=(28, 28)).flops_per_image / 1e6 for a in archs]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for arm, seconds, marker in zip(frame["arm"][1:], per_arch[1:], "os^v"):
        ax.scatter(flops, [per_arch[0][a] / seconds[a] for a in archs], label=arm, marker=marker, s=18)
    ax.axhline(1, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("forward MFLOP per image")
    ax.set_ylabel("speed-up over the naive loop")
    ax.set_title(f"NAS candidates ({frame['device'].iloc[0]}), one point per paper720 architecture", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, out)


def time_to_quality_bars(csv: Path, out: Path) -> None:
    frame = pd.read_csv(csv)
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.barh(range(len(frame)), 100 * frame["accuracy_mean"], xerr=100 * frame["accuracy_std"], color="tab:blue")
    for i, row in enumerate(frame.itertuples()):
        ax.text(
            1,
            i,
            f"{100 * row.accuracy_mean:.2f} %  after {row.condense_seconds:.0f} s ({row.iterations} iterations)",
            va="center",
            color="white",
            fontsize=8,
        )
    ax.axvline(80, color="tab:red", lw=1, ls="--")
    ax.set_yticks(range(len(frame)), [a.replace(", ", "\n", 1) for a in frame["arm"]], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("test accuracy (%)")
    ax.set_title(frame["setting"].iloc[0], fontsize=8)
    fig.tight_layout()
    _save(fig, out)


def precision_points(csv: Path, out: Path) -> None:
    """Validation accuracy of each seed in fp32 and bf16, per architecture, with the means."""
    frame = pd.read_csv(csv)
    archs = list(dict.fromkeys(frame["arch"]))
    fig, axes = plt.subplots(1, len(archs), figsize=(3.6 * len(archs), 3.2), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        for i, precision in enumerate(("fp32", "bf16")):
            accs = 100 * frame[(frame["arch"] == arch) & (frame["precision"] == precision)]["val_accuracy"]
            ax.scatter([i] * len(accs), accs, s=12, alpha=0.6)
            ax.errorbar(i + 0.15, accs.mean(), yerr=accs.std(), fmt="o", color="black", capsize=4)
            ax.text(i + 0.22, accs.mean(), f"{accs.mean():.2f}", fontsize=8, va="center")
        ax.set_xticks([0, 1], ["fp32", "bf16"])
        ax.set_xlim(-0.5, 1.8)
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title(arch, fontsize=8)
    fig.tight_layout()
    _save(fig, out)


def ceiling_bars(csv: Path, out: Path) -> None:
    """Per measured workload: the baseline's and nasproxy's seconds against the least any implementation
    needs for the same convolution and matrix FLOPs at the device's measured rates."""
    frame = pd.read_csv(csv).dropna(subset=["baseline_seconds"])
    fig, axes = plt.subplots(len(frame), 1, figsize=(7.5, 1.5 * len(frame) + 0.6), squeeze=False)
    for ax, row in zip(axes[:, 0], frame.itertuples()):
        bars = {
            "baseline": row.baseline_seconds,
            row.nasproxy_arm: row.nasproxy_seconds,
            "bound at conv rate": row.min_seconds_at_conv_fp32,
            "bound at GEMM peak": row.min_seconds_at_gemm_fp32,
        }
        ax.barh(range(4), list(bars.values()), color=["tab:gray", "tab:blue", "tab:orange", "tab:red"])
        ax.set_yticks(range(4), list(bars), fontsize=7)
        for i, v in enumerate(bars.values()):
            ax.text(v, i, f" {v:.0f} s ({row.baseline_seconds / v:.2f}x)", va="center", fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, row.baseline_seconds * 1.3)
        workload = re.sub(r"archs=(.*)", lambda m: f"{m[1].count(';') + 1} archs", row.setting)
        ax.set_title(f"{row.benchmark}: {workload} ({row.tflop:.1f} TFLOP; {row.source})", fontsize=8)
    axes[-1, 0].set_xlabel("seconds (speed-up over the baseline)", fontsize=8)
    fig.tight_layout()
    _save(fig, out)


def main() -> None:
    csv = HERE / "core" / "fidelity.csv"
    accuracy_bars(csv, csv.with_suffix(".png"), "Fashion-MNIST, ConvNet evaluators: DC vs random real images")
    special = {
        "time-to-quality": time_to_quality_bars,
        "candidate-precision": precision_points,
        "ceiling": ceiling_bars,
        "ttq-": partial(accuracy_bars, title="Fashion-MNIST, 1-ipc recipe on a Xeon (no AMX)", label_by_file=True),
    }
    folders = ("", "cuda", "cpu")
    for csv in (csv for d in folders for csv in sorted((HERE / "bench" / d).glob("*.csv"))):
        draw = next((f for prefix, f in special.items() if csv.stem.startswith(prefix)), bench_bars)
        draw(csv, csv.with_suffix(".png"))
        if csv.stem.startswith("candidate") and "seconds_per_arch" in pd.read_csv(csv, nrows=0).columns:
            candidate_speedup_by_flops(csv, csv.with_name(csv.stem + "-by-flops.png"))


if __name__ == "__main__":
    main()
