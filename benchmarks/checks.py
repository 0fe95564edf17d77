"""Not timings: whether bf16 NAS candidates rank as fp32 ones do, and each workload against the device's
arithmetic ceiling."""

import argparse

import pandas as pd
import torch

from benchmarks._common import (
    PRECISION_ARCHS,
    _candidate_protocol,
    _candidate_setting,
    _condense_setting,
    _condense_settings,
    _evaluate_protocol,
    _evaluate_setting,
    _out_folder,
    _sampled_archs,
)


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
