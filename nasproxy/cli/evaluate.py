"""``nasproxy evaluate``."""

from __future__ import annotations

import json

import click

from nasproxy._configs import PRECISIONS, EvaluateSettings, TrainConfig
from nasproxy.cli._common import (
    _augment_option,
    _backend_option,
    _compile_option,
    _data_options,
    _device_option,
    _friendly_errors,
    _prepare_device,
    _quiet_option,
    main,
)


@main.command()
@click.argument("condensed_sets", nargs=-1, required=True, type=click.Path())
@click.option(
    "--model",
    "models",
    multiple=True,
    default=["convnet"],
    show_default=True,
    help="Evaluator network; repeat for a cross-architecture table.",
)
@click.option(
    "--networks",
    "--models",  # its earlier name, kept so that existing scripts run
    "num_models",
    type=int,
    default=EvaluateSettings.models,
    show_default=True,
    help="Networks trained per condensed set (seeds seed .. seed + N - 1).",
)
@click.option("--epochs", type=int, default=TrainConfig.epochs, show_default=True)
@click.option("--lr", type=float, default=TrainConfig.lr, show_default=True)
@click.option("--batch-size", type=int, default=TrainConfig.batch_size, show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default=TrainConfig.precision, show_default=True)
@click.option("--seed", type=int, default=EvaluateSettings.seed, show_default=True, help="Network i uses seed + i.")
@_augment_option
@_compile_option
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON lines.")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(),
    default="results/evaluations.csv",
    show_default=True,
    help="Append one row per (condensed set, model) here; '' to skip.",
)
@_data_options
@_device_option
@_backend_option
@_quiet_option
@_friendly_errors
def evaluate(
    condensed_sets,
    models,
    num_models,
    epochs,
    lr,
    batch_size,
    precision,
    seed,
    train_augment,
    compile_,
    as_json,
    csv_path,
    data_root,
    download,
    device,
    backend,
    quiet,
):
    """Train fresh networks on each condensed set; report test accuracy (mean ± std)."""
    from nasproxy.engine import resolve_device
    from nasproxy.evaluate import evaluate_files

    config = TrainConfig(
        epochs=epochs, lr=lr, batch_size=batch_size, precision=precision, compile=compile_, backend=backend or "auto"
    )
    runs = evaluate_files(
        condensed_sets,
        models=models,
        num_models=num_models,
        config=config,
        seed=seed,
        augment=train_augment,
        progress=not quiet,
        data_root=data_root,
        download=download,
        csv=csv_path or None,
        device=resolve_device(device),
    )
    _prepare_device(device, backend, quiet)  # after evaluate_files has checked everything
    for result, row in runs:
        if as_json:
            click.echo(json.dumps(row))
        else:
            click.echo(
                f"{row['proxy']} · {result.model}: {100 * result.mean:.2f} ± {100 * result.std:.2f} % "
                f"({num_models} models, {result.seconds:.0f} s)"
            )
