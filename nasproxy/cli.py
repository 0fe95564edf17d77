"""The ``nasproxy`` command. It only parses options and calls the library; library errors become one-line
messages and exit code 2. Imports of torch and friends happen inside the commands so ``--help`` is instant."""

from __future__ import annotations

import functools
import json
import re
import sys
import warnings
from functools import partial
from pathlib import Path

import click

from nasproxy._configs import PRECISIONS, CondenseSettings, EvaluateSettings, SearchRequest, SplitSpec, TrainConfig

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _friendly_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from nasproxy._errors import NasproxyError

        try:
            return fn(*args, **kwargs)
        except NasproxyError as exc:
            click.echo(f"error: {exc.for_cli()}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            click.echo("interrupted; finished work is saved (re-run with --resume where offered)", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


def _prepare_device(device: str, backend: str | None, quiet: bool):
    """The device to run on, the process configured for speed and determinism, and the CPU kernels built
    before any progress bar starts (where the backend may use them)."""
    from nasproxy.engine import configure_process, resolve_device

    dev = resolve_device(device)
    configure_process()
    if dev.type == "cpu" and backend != "aten":
        from nasproxy.backends import build_cpu_kernels

        build_cpu_kernels(announce=None if quiet else partial(click.echo, err=True))
    return dev


def _data_options(fn):
    fn = click.option(
        "--data-root",
        type=click.Path(file_okay=False),
        envvar="NASPROXY_DATA",
        help="Where datasets live (also $NASPROXY_DATA). Debian's /usr/share/datasets is searched too.",
    )(fn)
    fn = click.option("--download", is_flag=True, help="Allow downloading a missing dataset (needs internet).")(fn)
    return fn


def _split_options(fn):
    fn = click.option(
        "--holdout",
        type=int,
        default=SplitSpec.holdout,
        show_default=True,
        help="Training images held out for validation (class-balanced); condensation never sees them.",
    )(fn)
    fn = click.option(
        "--split-seed", type=int, default=SplitSpec.seed, show_default=True, help="Seed of the hold-out draw."
    )(fn)
    return fn


_device_option = click.option(
    "--device",
    default="auto",
    envvar="NASPROXY_DEVICE",
    show_default=True,
    help="auto (CUDA when available), cpu, cuda or cuda:N.",
)
_quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
_augment_option = click.option(
    "--augment",
    "train_augment",
    default="auto",
    show_default=True,
    help="Augment training images: auto (as the proxy file says: DSA's files), none, or a strategy such as "
    "color_crop_cutout_flip_scale_rotate.",
)
_backend_option = click.option(
    "--backend",
    type=click.Choice(["auto", "aten", "cpu-kernels"]),
    default=None,
    help="How networks run: PyTorch's operators (aten), nasproxy's C++ kernels (cpu-kernels, CPUs only), or "
    "auto (cpu-kernels on CPUs where they build)  [default: auto]",
)
_compile_option = click.option(
    "--compile/--no-compile",
    "compile_",
    default=None,
    help="torch.compile the networks (default: on CPUs when the run is long enough to pay for it, never on CUDA; "
    "NASPROXY_COMPILE=0 turns that off).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "NASPROXY"})
@click.version_option(package_name="nasproxy")
def main() -> None:
    """Cheap neural architecture search on condensed dataset proxies."""
    warnings.showwarning = _one_line_warning


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning is one line on stderr, as errors are, not Python's two lines with a source path."""
    text = (message.for_cli() if hasattr(message, "for_cli") else str(message)).strip().splitlines()
    click.echo(f"warning: {text[0] if text else category.__name__}", err=True)


@main.command()
@click.option(
    "--dataset",
    default="fashion-mnist",
    show_default=True,
    help="Registered dataset, folder:PATH (ImageFolder) or tensors:FILE.pt.",
)
@click.option(
    "--method",
    default=CondenseSettings.method,
    show_default=True,
    help="Condensation method (see `nasproxy list methods`).",
)
@click.option("--ipc", type=int, default=CondenseSettings.ipc, show_default=True, help="Images per class.")
@click.option("--out", type=click.Path(), required=True, help="Proxy file to write (.pt): a condensed set.")
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
    holdout,
    split_seed,
    data_root,
    download,
    device,
    backend,
    quiet,
):
    """Condense a dataset into a small proxy (gradient matching, or a coreset baseline)."""
    from nasproxy.condensers import CondenseJob

    options = {
        "iterations": iterations,
        "real_batch": real_batch,
        "model": net,
        "epochs": epochs,
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
    )
    proxy = job.run(_prepare_device(device, backend, quiet), progress=not quiet)
    if not quiet:
        meta = proxy.meta
        click.echo(f"wrote {job.out}: {len(proxy.images)} images, {meta['wall_seconds']:.0f} s on {meta['device']}")


@main.command()
@click.argument("proxy_files", nargs=-1, required=True, type=click.Path())
@click.option(
    "--model",
    "models",
    multiple=True,
    default=["convnet"],
    show_default=True,
    help="Evaluator network; repeat for a cross-architecture table.",
)
@click.option(
    "--models", "num_models", type=int, default=EvaluateSettings.models, show_default=True, help="Networks per proxy."
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
    help="Append one row per (proxy, model) here; '' to skip.",
)
@_data_options
@_device_option
@_backend_option
@_quiet_option
@_friendly_errors
def evaluate(
    proxy_files,
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
    """Train fresh networks on each proxy; report test accuracy (mean ± std)."""
    from nasproxy.engine import resolve_device
    from nasproxy.evaluate import evaluate_files

    config = TrainConfig(
        epochs=epochs, lr=lr, batch_size=batch_size, precision=precision, compile=compile_, backend=backend or "auto"
    )
    settings = dict(models=models, num_models=num_models, config=config, seed=seed, augment=train_augment)
    settings.update(progress=not quiet)
    runs = evaluate_files(
        proxy_files,
        **settings,
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


@main.command()
@click.argument("proxy_file", type=click.Path())
@click.option("--out", type=click.Path(), required=True, help="Image to write (.png or .pdf).")
@click.option("--max-per-class", type=int, default=10, show_default=True)
@_friendly_errors
def show(proxy_file, out, max_per_class):
    """Draw a proxy's images as a class-by-row grid."""
    from nasproxy._artifact import CondensedSet, check_writable
    from nasproxy._viz import proxy_grid, save_figure

    check_writable(out, what="--out")
    proxy = CondensedSet.load(proxy_file)
    save_figure(proxy_grid(proxy, max_per_class=max_per_class), out)
    click.echo(f"wrote {out}")


@main.command()
@click.argument("proxy_file", type=click.Path())
@_friendly_errors
def info(proxy_file):
    """Print a proxy's provenance as JSON."""
    from nasproxy._artifact import CondensedSet

    proxy = CondensedSet.load(proxy_file)
    meta = {k: v for k, v in proxy.meta.items() if k != "loss_history"}
    click.echo(json.dumps({"images": list(proxy.images.shape), **meta}, indent=2))


@main.command("list")
@click.argument("what", type=click.Choice(["datasets", "models", "methods", "proxies"]))
def list_(what):
    """List registered datasets, models, condensation methods or search proxies."""
    if what == "proxies":
        from nasproxy.search import PROXIES as registry
    elif what == "datasets":
        from nasproxy.data import DATASETS as registry
    elif what == "models":
        from nasproxy.models import MODELS as registry
    else:
        from nasproxy.condensers import CONDENSERS as registry
    width = max(map(len, registry.names()), default=0)
    for name in registry.names():
        entry = registry.get(name)
        about = getattr(entry, "description", "") or (entry.__doc__ or "" if isinstance(entry, type) else "")
        about = about.strip().splitlines()[0] if about.strip() else ""
        click.echo(f"{name:<{width}}  {about}".rstrip())


@main.group()
def spaces():
    """Built-in and user search spaces."""


@spaces.command("list")
def spaces_list():
    """Every known space with its size."""
    from nasproxy.spaces import list_spaces, load_space

    for name in list_spaces():
        click.echo(f"{name}\t{len(load_space(name))} architectures")


@spaces.command("show")
@click.argument("space")
@click.option("--examples", type=int, default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@_friendly_errors
def spaces_show(space, examples, as_json):
    """Axes, size and example architectures of SPACE (a name, a .yaml file or file.py:Class)."""
    from nasproxy.spaces import load_space

    sp = load_space(space)
    info = {k: v for k, v in sp.describe().items() if k != "architectures"}
    info["examples"] = [c.arch_id for c in sp.sample(examples, seed=0)]
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{sp.name}: {len(sp)} architectures")
    for axis, values in info.get("axes", {}).items():
        click.echo(f"  {axis}: {', '.join(map(str, values))}")
    click.echo("examples:")
    for example in info["examples"]:
        click.echo(f"  {example}")


_search_common = [
    click.option(
        "--space", required=True, help="Search space: a name (`nasproxy spaces list`), .yaml or file.py:Class."
    ),
    click.option(
        "--proxy",
        required=True,
        help="ours, random, ... (a proxy file), early-stopping, full, or a "
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
@click.option("--proxy-file", type=click.Path(), help="Proxy file (a condensed set) made by `nasproxy condense`.")
@click.option("--dataset", default=None, help="Dataset (default: the proxy file's, else fashion-mnist).")
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
    from nasproxy.search import chosen_architectures, plan_search, run_search

    only = chosen_architectures(
        space=space, dataset=dataset, archs_file=archs_file, only_top=only_top, sources=from_, sample=sample
    )
    request = SearchRequest(
        space=space,
        proxy=proxy,
        dataset=dataset,
        proxy_file=proxy_file,
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
        only=only,
        storage=storage,
        study=study,
        device=device,
        devices=tuple(d.strip() for d in devices.split(",")) if devices else None,
        backend=backend or "auto",
        augment=train_augment,
    )
    _prepare_device(request.device, backend, quiet)
    plan, ctx = plan_search(request)
    left = plan.total - plan.done
    if not quiet or dry_run:
        click.echo(
            f"study {plan.study_name} ({plan.storage_url}): {plan.total} architectures, {plan.done} done, "
            f"{left} to run; estimated {_duration(plan.estimate_seconds)} on {plan.device_name}",
            err=True,
        )
        if left and plan.estimate_seconds > 600:
            click.echo(
                "  to cut it: --sample N (a seeded subset), --repeats 1-2, fewer --epochs, a smaller space "
                "(e.g. tiny), or more --workers / machines sharing a --storage URL",
                err=True,
            )
    if dry_run:
        return
    out = run_search(request, workers=workers, progress=not quiet, plan=plan, ctx=ctx)
    if not quiet:
        click.echo(f"wrote {out}")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@main.command()
@click.option("--study", required=True, help="Study name (printed by `nasproxy search`).")
@click.option(
    "--storage", envvar="NASPROXY_STORAGE", help="Storage URL or journal path (default: the study's journal)."
)
@click.option("--out", type=click.Path(), help="CSV to write (default results/search/<study>.csv).")
@_friendly_errors
def export(study, storage, out):
    """Re-write a study's results as CSV (one row per architecture) from its storage."""
    import optuna

    from nasproxy._artifact import check_writable
    from nasproxy._errors import NasproxyError
    from nasproxy.search._export import EXPORT_DIR, export_study
    from nasproxy.search._storage import open_storage, storage_url_for

    target = check_writable(Path(out) if out else EXPORT_DIR / f"{study}.csv", what="--out")
    url = storage_url_for(storage, study)
    if "://" not in url and not Path(url).exists():
        raise NasproxyError(f"no storage at {url}; pass --storage")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        loaded = optuna.load_study(study_name=study, storage=open_storage(url))
    except KeyError:
        raise NasproxyError(f"no study {study!r} in {url}") from None
    path = export_study(loaded, target)
    click.echo(f"wrote {path}")


@main.command()
@click.option("--dataset", default="fashion-mnist", show_default=True, help="Only studies of this dataset.")
@click.option("--space", help="Only studies of this search space (its name, e.g. tiny or paper720).")
@click.option(
    "--storage",
    "storages",
    multiple=True,
    envvar="NASPROXY_STORAGE",
    help="Optuna storage (journal path or URL) to read; repeatable (default: every journal in results/studies).",
)
@click.option("--study", "studies", multiple=True, help="Only these studies (repeatable).")
@click.option("--csv", "csvs", multiple=True, type=click.Path(), help="A search's CSV export (repeatable).")
@click.option("--truth", help="The ground-truth study (default: the one study of --proxy full).")
@click.option(
    "--out", type=click.Path(file_okay=False), help="Folder to write (default results/reports/DATASET-SPACE)."
)
@click.option("--bootstrap", "resamples", type=int, default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON to stdout.")
@_friendly_errors
def report(dataset, space, storages, studies, csvs, truth, out, resamples, seed, as_json):
    """How well each proxy ranks architectures against the ground truth: table, figures, README."""
    from nasproxy._artifact import check_writable
    from nasproxy._errors import NasproxyError
    from nasproxy.report import (
        build_report,
        default_storages,
        load_csv,
        load_studies,
        report_json,
        table_text,
        write_report,
    )

    if not (space or studies or csvs):
        raise NasproxyError("pass --space NAME (or --study / --csv) to say which searches to compare")
    default = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{dataset}-{space or 'studies'}")
    folder = Path(out or Path("results") / "reports" / default)
    check_writable(folder / "table.csv", what="--out")
    found = [load_csv(path) for path in csvs]
    sources = list(storages) or ([] if csvs and not studies else default_storages())
    if sources or studies:
        found += load_studies(sources, dataset=dataset, space=space, names=studies)
    if not found:
        raise NasproxyError(
            f"no study of {dataset}/{space} in {', '.join(sources) or 'results/studies'}; run `nasproxy search` "
            "first or pass --storage"
        )
    result = build_report(found, truth=truth, resamples=resamples, seed=seed, dataset=dataset, space=space)
    write_report(result, folder)
    if as_json:
        click.echo(json.dumps(report_json(result)["table"], indent=2))
        return
    click.echo(table_text(result.table))
    ceiling = result.truth.ceiling.ceiling
    click.echo(f"ceiling (the ground truth's own noise): {'n/a' if ceiling is None else f'{ceiling:.2f}'}")
    click.echo(f"wrote {folder}/: table.csv, table.md, report.json, README.md and figures (PNG, PDF)")


if __name__ == "__main__":
    main()
