"""``nasproxy condense``."""

from __future__ import annotations

import click

from nasproxy._configs import PRECISIONS, CondenseSettings, SplitSpec
from nasproxy.cli._common import (
    _backend_option,
    _compile_option,
    _data_options,
    _device_option,
    _friendly_errors,
    _prepare_device,
    _quiet_option,
    _split_options,
    main,
)


@main.command()
@click.option(
    "--dataset",
    default="fashion-mnist",
    show_default=True,
    help="Registered dataset, folder:PATH (ImageFolder) or tensors:FILE.pt.",
)
@click.option(
    "--condenser",
    "--method",  # its earlier name, kept so that existing scripts run
    "method",
    default=CondenseSettings.method,
    show_default=True,
    help="The condenser (see `nasproxy list condensers`).",
)
@click.option("--ipc", type=int, default=CondenseSettings.ipc, show_default=True, help="Images per class.")
@click.option("--out", type=click.Path(), required=True, help="Condensed set to write (.pt).")
@click.option("--seed", type=int, default=CondenseSettings.seed, show_default=True)
@click.option(
    "--iterations", type=int, help="Outer iterations (default: the method's; dc/dsa 1000, dm 20000). Fewer = faster."
)
@click.option("--real-batch", type=int, help="Real images per class per matching step (default 256).")
@click.option(
    "--model",
    "net",
    help="Network whose gradients/embeddings are matched, or trained to select with (default convnet).",
)
@click.option("--epochs", type=int, help="herding, k-center, forgetting: epochs of the network trained to select.")
@click.option(
    "--never-learned",
    type=click.Choice(["first", "last"]),
    help="forgetting: rank images never classified correctly last (default; reproduces the DC paper) or first "
    "(Toneva et al.).",
)
@click.option(
    "--augment",
    help="dc, dsa, dm: Siamese augmentation of each matching step: none, auto (DSA's strategy) or e.g. "
    "color_crop_cutout_flip_scale_rotate (default: dsa and dm auto, dc none).",
)
@click.option("--init", type=click.Choice(["noise", "real"]), help="Start from Gaussian noise (paper) or real images.")
@click.option("--metric", type=click.Choice(["layerwise", "mse", "cos"]), help="Gradient distance (paper: layerwise).")
@click.option("--lr-img", type=float, help="Step size of the synthetic images (paper: 0.1).")
@click.option("--outer-loop", type=int, help="Matching steps per network (default: paper's value for --ipc).")
@click.option("--inner-loop", type=int, help="Network epochs between matching steps (default: paper's).")
@click.option("--precision", type=click.Choice(PRECISIONS), help="Arithmetic of the network passes.")
@click.option("--checkpoint-every", type=int, help="Outer iterations between checkpoints.")
@_compile_option
@click.option(
    "--resume/--restart",
    default=None,
    help="Continue an interrupted run from its checkpoint, or discard the checkpoint and start over.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@click.option(
    "--hours",
    type=float,
    help="dc, dsa, dm: wall-time budget; when it runs out the run stops at a checkpoint (exit status 75) and "
    "--resume continues it.",
)
@_split_options
@_data_options
@_device_option
@_backend_option
@_quiet_option
@_friendly_errors
def condense(
    dataset,
    method,
    ipc,
    out,
    seed,
    iterations,
    real_batch,
    net,
    epochs,
    never_learned,
    augment,
    init,
    metric,
    lr_img,
    outer_loop,
    inner_loop,
    precision,
    checkpoint_every,
    compile_,
    resume,
    force,
    hours,
    holdout,
    split_seed,
    data_root,
    download,
    device,
    backend,
    quiet,
):
    """Condense a dataset into a condensed set: a few images per class (gradient matching, or a coreset)."""
    from nasproxy.condensers import CondenseJob

    options = {
        "iterations": iterations,
        "real_batch": real_batch,
        "model": net,
        "epochs": epochs,
        "never_learned": never_learned,
        "augment": augment,
        "init": init,
        "metric": metric,
        "lr_img": lr_img,
        "outer_loop": outer_loop,
        "inner_loop": inner_loop,
        "precision": precision,
        "checkpoint_every": checkpoint_every,
        "compile": compile_,
        "backend": backend,
    }
    job = CondenseJob(
        out=out,
        dataset=dataset,
        method=method,
        ipc=ipc,
        seed=seed,
        options=options,
        split=SplitSpec(holdout=holdout, seed=split_seed),
        data_root=data_root,
        download=download,
        resume=resume is True,
        restart=resume is False,
        force=force,
        hours=hours,
    )
    condensed = job.run(_prepare_device(device, backend, quiet), progress=not quiet)
    if not quiet:
        meta = condensed.meta
        click.echo(f"wrote {job.out}: {len(condensed.images)} images, {meta['wall_seconds']:.0f} s on {meta['device']}")
