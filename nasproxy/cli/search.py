"""``nasproxy search``."""

from __future__ import annotations

from functools import partial

import click

from nasproxy._configs import PRECISIONS, SearchRequest
from nasproxy.cli._common import (
    _augment_option,
    _backend_option,
    _data_options,
    _device_option,
    _friendly_errors,
    _prepare_device,
    _quiet_option,
    _split_options,
    main,
)

_search_common = [
    click.option(
        "--space", required=True, help="Search space: a name (`nasproxy spaces list`), .yaml or file.py:Class."
    ),
    click.option(
        "--proxy",
        required=True,
        help="ours, random, ... (a condensed set), early-stopping, full, or a "
        "training-free score: synflow, naswot, snip, grad-norm, params.",
    ),
    click.option(
        "--storage",
        envvar="NASPROXY_STORAGE",
        help="Optuna storage: a journal file path (default results/studies/<study>.journal) or a URL "
        "(sqlite:///..., postgresql://user@host/db).",
    ),
    click.option("--study", help="Study name (default: dataset-space-proxy-protocolhash)."),
]


def _apply(options):
    def deco(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return deco


@main.command()
@_apply(_search_common)
@click.option("--proxy-file", type=click.Path(), help="Condensed set made by `nasproxy condense`.")
@click.option("--dataset", default=None, help="Dataset (default: the condensed set's, else fashion-mnist).")
@click.option("--epochs", type=int, help="Training epochs per candidate (paper: 100 on a proxy).")
@click.option("--repeats", type=int, help="Networks trained per candidate (paper: 5).")
@click.option("--batch-size", type=int, default=SearchRequest.batch_size, show_default=True)
@click.option("--lr", type=float, default=SearchRequest.lr, show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default=SearchRequest.precision, show_default=True)
@click.option("--seed", type=int, default=SearchRequest.seed, show_default=True)
@_augment_option
@click.option(
    "--score-test/--no-score-test",
    default=None,
    help="Also score each candidate on the test set (default: only --proxy full, the ground truth; ranking "
    "needs only the validation images).",
)
@click.option(
    "--ipc",
    type=int,
    default=SearchRequest.ipc,
    show_default=True,
    help="early-stopping without --proxy-file: match the training budget of this many images per class.",
)
@click.option("--sample", type=int, help="Only a seeded random sample of this many architectures.")
@click.option(
    "--sampler",
    type=click.Choice(["sweep", "tpe"]),
    default=SearchRequest.sampler,
    show_default=True,
    help="sweep: every architecture (of --sample/--only-top); tpe: Optuna's TPE searches a grid space.",
)
@click.option(
    "--trials", type=int, default=SearchRequest.trials, show_default=True, help="With --sampler tpe: architectures."
)
@click.option("--sample-seed", type=int, default=SearchRequest.sample_seed, show_default=True)
@click.option(
    "--archs",
    "archs_file",
    type=click.Path(),
    help="Only the architecture ids listed in this file (one per line, # comments).",
)
@click.option("--only-top", type=int, help="Only the top-K architectures of the searches named by --from.")
@click.option("--from", "from_", help="Comma-separated proxy names or CSV exports, for --only-top.")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes on this machine.")
@click.option(
    "--devices",
    help="Comma-separated devices the workers take in turn (e.g. cuda:0,cuda:1; several workers per GPU keep "
    "several candidates in flight on it). Default: --device for every worker.",
)
@click.option(
    "--hours",
    type=float,
    help="Wall-time budget: after this many hours no new architecture is started (those in training finish); "
    "re-run the same command to continue.",
)
@click.option("--dry-run", is_flag=True, help="Only print what the search would cost.")
@_split_options
@_data_options
@_device_option
@_backend_option
@_quiet_option
@_friendly_errors
def search(
    space,
    proxy,
    storage,
    study,
    proxy_file,
    dataset,
    epochs,
    repeats,
    batch_size,
    lr,
    precision,
    seed,
    train_augment,
    score_test,
    ipc,
    sample,
    sampler,
    trials,
    sample_seed,
    archs_file,
    only_top,
    from_,
    workers,
    devices,
    hours,
    dry_run,
    holdout,
    split_seed,
    data_root,
    download,
    device,
    backend,
    quiet,
):
    """Train (or score) every candidate of a space on a proxy; resumable, parallel, distributed."""
    from nasproxy._api import search as run
    from nasproxy._errors import BudgetSpent
    from nasproxy.search import chosen_architectures

    only = chosen_architectures(
        space=space, dataset=dataset, archs_file=archs_file, only_top=only_top, sources=from_, sample=sample
    )
    _prepare_device(device, backend, quiet)

    def show(plan) -> None:
        left = plan.total - plan.done
        if quiet and not dry_run:
            return
        plan.announce = partial(click.echo, err=True)
        click.echo(
            f"study {plan.study_name} ({plan.storage_url}): {plan.total} architectures, {plan.done} done, "
            f"{left} to run; {_estimate_text(plan)} on {plan.device_name}",
            err=True,
        )
        if left and hours and plan.estimate_seconds:
            # the same price: worker time over the workers started here, against the budget's wall time
            share = min(1.0, hours * 3600 * workers / plan.estimate_seconds)
            if share < 1:
                click.echo(
                    f"  the {hours:g}-hour budget covers about {share:.0%} of it with {workers} worker(s); the "
                    "same command continues where it stops",
                    err=True,
                )
        if left and plan.estimate_seconds > 600:
            click.echo(
                "  to cut it: --sample N (a seeded subset), --repeats 1-2, fewer --epochs, a smaller space "
                "(e.g. tiny), or more --workers / machines sharing a --storage URL",
                err=True,
            )

    result = run(
        space=space,
        proxy=proxy,
        storage=storage,
        proxy_file=proxy_file,
        archs=only,
        devices=[d.strip() for d in devices.split(",")] if devices else None,
        workers=workers,
        csv="default",
        progress=not quiet,
        dry_run=dry_run,
        on_plan=show,
        study=study,
        dataset=dataset,
        holdout=holdout,
        split_seed=split_seed,
        data_root=data_root,
        download=download,
        epochs=epochs,
        repeats=repeats,
        batch_size=batch_size,
        lr=lr,
        precision=precision,
        seed=seed,
        score_test=score_test,
        ipc=ipc,
        sample=sample,
        sampler=sampler,
        trials=trials,
        sample_seed=sample_seed,
        device=device,
        backend=backend or "auto",
        augment=train_augment,
        hours=hours,
    )
    if result.budget_spent:
        raise BudgetSpent(result.budget_spent)
    if not quiet and not dry_run:
        click.echo(f"wrote {result.csv}")


def _estimate_text(plan) -> str:
    from nasproxy.search._estimate import MIN_FINISHED, duration_text

    e = plan.estimate
    if e is None or not e.seconds:
        return f"estimated {duration_text(plan.estimate_seconds)}"
    if e.fitted_on:
        return f"estimated {e.describe()} (fitted to the {e.fitted_on} finished here)"
    if e.calibrated_on:
        return (
            f"estimated {e.describe()} (from timing {e.calibrated_on} of its architectures here; refined once "
            f"{MIN_FINISHED} finish)"
        )
    return (
        f"estimated {duration_text(e.seconds)} by the FLOP model, possibly up to {duration_text(e.high)} "
        f"(refined once {MIN_FINISHED} architectures finish here)"
    )
