"""Is bf16 training of NAS candidates the same as fp32 within noise? Trains paper720 candidates on a random
10-ipc Fashion-MNIST proxy (the candidate benchmark's protocol: 100 epochs, 5,000 validation images) with
many seeds in both precisions and writes one row per (architecture, seed, precision).

    python -m benchmarks.precision_noise [--seeds 20] [ARCH ...]
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from functools import partial
from pathlib import Path

import torch

DEFAULT_ARCHS = ["convnet-w128-d1-instance-leakyrelu-max", "convnet-w128-d2-layer-leakyrelu-max"]


def main() -> None:
    import pandas as pd

    from nasproxy import TrainConfig, condense
    from nasproxy.data import load_dataset
    from nasproxy.engine import accuracy, train_from_scratch
    from nasproxy.spaces import load_space

    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision_noise", description=__doc__)
    parser.add_argument("archs", nargs="*", default=DEFAULT_ARCHS)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    ds = load_dataset("fashion-mnist")
    proxy = condense(ds, method="random", ipc=10, seed=0)
    space = load_space("paper720")
    c, h, w = ds.image_shape
    rows = []
    for arch in args.archs:
        spec = space.get(arch).spec
        for precision in ("fp32", "bf16"):
            config = TrainConfig(epochs=100, precision=precision)
            nets = train_from_scratch(
                partial(space.build, spec, channels=c, num_classes=ds.num_classes, image_size=(h, w)),
                proxy.images,
                proxy.labels,
                config,
                seeds=range(args.seeds),
            )
            accs = accuracy(nets, ds.val_images, ds.val_labels, precision=precision)
            rows += [{"arch": arch, "seed": s, "precision": precision, "val_accuracy": a} for s, a in enumerate(accs)]
            print(f"{arch} {precision}: mean {sum(accs) / len(accs):.4f}", flush=True)
    out = Path("results") / "bench" / "candidate-precision.csv"
    stamp = {
        "date": datetime.date.today().isoformat(),
        "command": shlex.join([sys.executable.split("/")[-1], "-m", "benchmarks.precision_noise", *sys.argv[1:]]),
        "torch": torch.__version__,
    }
    pd.DataFrame([{**r, **stamp} for r in rows]).to_csv(out, index=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
