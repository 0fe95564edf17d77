"""The ``nasproxy`` command. It only parses options and calls the library; library errors become one-line
messages and exit code 2. Imports of torch and friends happen inside the commands so ``--help`` is instant."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _friendly_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from nasproxy._errors import NasproxyError

        try:
            return fn(*args, **kwargs)
        except NasproxyError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            click.echo("interrupted; finished work is saved (re-run with --resume where offered)", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


def _data_options(fn):
    fn = click.option("--data-root", type=click.Path(file_okay=False), envvar="NASPROXY_DATA",
                      help="Where datasets live (also $NASPROXY_DATA). Debian's /usr/share/datasets is searched too.")(fn)
    fn = click.option("--download", is_flag=True, help="Allow downloading a missing dataset (needs internet).")(fn)
    return fn


def _split_options(fn):
    fn = click.option("--holdout", type=int, default=5000, show_default=True,
                      help="Training images held out for validation (class-balanced); condensation never sees them.")(fn)
    fn = click.option("--split-seed", type=int, default=0, show_default=True, help="Seed of the hold-out draw.")(fn)
    return fn


_device_option = click.option("--device", default="auto", envvar="NASPROXY_DEVICE", show_default=True,
                              help="auto (CUDA when available), cpu, cuda or cuda:N.")
_quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bars.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "NASPROXY"})
@click.version_option(package_name="nasproxy")
def main() -> None:
    """Cheap neural architecture search on condensed dataset proxies."""


@main.command()
@click.option("--dataset", default="fashion-mnist", show_default=True,
              help="Registered dataset, folder:PATH (ImageFolder) or tensors:FILE.pt.")
@click.option("--method", default="dc", show_default=True, help="Condensation method (see `nasproxy methods`).")
@click.option("--ipc", type=int, default=10, show_default=True, help="Images per class.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Proxy file to write (.pt).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--iterations", type=int, help="Outer iterations K (paper: 1000). Fewer = faster, lower quality.")
@click.option("--real-batch", type=int, help="Real images per class per matching step (paper: 256).")
@click.option("--model", "net", help="Network whose gradients are matched (default convnet).")
@click.option("--init", type=click.Choice(["noise", "real"]), help="Start from Gaussian noise (paper) or real images.")
@click.option("--metric", type=click.Choice(["layerwise", "mse", "cos"]), help="Gradient distance (paper: layerwise).")
@click.option("--lr-img", type=float, help="Step size of the synthetic images (paper: 0.1).")
@click.option("--outer-loop", type=int, help="Matching steps per network (default: paper's value for --ipc).")
@click.option("--inner-loop", type=int, help="Network epochs between matching steps (default: paper's).")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), help="Arithmetic of the network passes.")
@click.option("--checkpoint-every", type=int, help="Outer iterations between checkpoints.")
@click.option("--resume/--restart", default=None,
              help="Continue an interrupted run from its checkpoint, or discard the checkpoint and start over.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@_split_options
@_data_options
@_device_option
@_quiet_option
@_friendly_errors
def condense(dataset, method, ipc, out, seed, iterations, real_batch, net, init, metric, lr_img, outer_loop,
             inner_loop, precision, checkpoint_every, resume, force, holdout, split_seed, data_root, download,
             device, quiet):
    """Condense a dataset into a small proxy (gradient matching, or a coreset baseline)."""
    from nasproxy._errors import NasproxyError
    from nasproxy.condense._run import condense as run
    from nasproxy.data import SplitSpec, load_dataset
    from nasproxy.engine import resolve_device

    out = Path(out)
    checkpoint = out.with_name(out.name + ".ckpt")
    if checkpoint.exists() and resume is None:
        raise NasproxyError(
            f"an interrupted run left {checkpoint}; pass --resume to continue it or --restart to start over"
        )
    if out.exists() and not (force or resume):
        raise NasproxyError(f"{out} exists; pass --force to overwrite it (or --resume to extend its run)")
    if ipc < 1:
        raise NasproxyError(f"--ipc must be at least 1 image per class, got {ipc}")
    options = {"iterations": iterations, "real_batch": real_batch, "model": net, "init": init, "metric": metric,
               "lr_img": lr_img, "outer_loop": outer_loop, "inner_loop": inner_loop, "precision": precision,
               "checkpoint_every": checkpoint_every}
    dev = resolve_device(device)
    data = load_dataset(dataset, data_root=data_root, download=download,
                        split=SplitSpec(holdout=holdout, seed=split_seed))
    if resume is False:
        checkpoint.unlink(missing_ok=True)
    proxy = run(data, method=method, ipc=ipc, seed=seed, options=options, device=dev, checkpoint=checkpoint,
                resume=bool(resume), progress=not quiet)
    proxy.save(out)
    checkpoint.unlink(missing_ok=True)
    if not quiet:
        click.echo(f"wrote {out}: {len(proxy.images)} images, {proxy.meta['wall_seconds']:.0f} s on {proxy.meta['device']}")


@main.command()
@click.argument("proxy_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--model", "models", multiple=True, default=["convnet"], show_default=True,
              help="Evaluator network; repeat for a cross-architecture table.")
@click.option("--models", "num_models", type=int, default=20, show_default=True, help="Networks trained per proxy.")
@click.option("--epochs", type=int, default=300, show_default=True)
@click.option("--lr", type=float, default=0.01, show_default=True)
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Network i uses seed + i.")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON lines.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default="results/evaluations.csv",
              show_default=True, help="Append one row per (proxy, model) here; '' to skip.")
@_data_options
@_device_option
@_quiet_option
@_friendly_errors
def evaluate(proxy_files, models, num_models, epochs, lr, batch_size, precision, seed, as_json, csv_path,
             data_root, download, device, quiet):
    """Train fresh networks on each proxy; report test accuracy (mean ± std)."""
    from nasproxy._artifact import Proxy
    from nasproxy._errors import NasproxyError
    from nasproxy.data import SplitSpec, load_dataset
    from nasproxy.engine import TrainConfig, resolve_device
    from nasproxy.evaluate import evaluate_proxy

    if num_models < 1 or epochs < 1:
        raise NasproxyError("--models and --epochs must be at least 1")
    dev = resolve_device(device)
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, precision=precision)
    proxies = [(Path(p), Proxy.load(p)) for p in proxy_files]
    datasets = {}
    for path, proxy in proxies:
        meta = proxy.meta
        key = (meta.get("dataset"), meta.get("holdout"), meta.get("split_seed"))
        if key not in datasets:
            datasets[key] = load_dataset(meta["dataset"], data_root=data_root, download=download,
                                         split=SplitSpec(holdout=meta.get("holdout", 5000), seed=meta.get("split_seed", 0)))
        for model in models:
            result = evaluate_proxy(proxy, datasets[key], model=model, num_models=num_models, config=config,
                                    seed=seed, device=dev, progress=not quiet)
            row = {"proxy": str(path), "dataset": meta.get("dataset"), "method": meta.get("method"),
                   "ipc": meta.get("ipc"), "iterations": meta.get("iterations_done"), **result.as_dict()}
            if as_json:
                click.echo(json.dumps(row))
            else:
                click.echo(f"{path} · {model}: {100 * result.mean:.2f} ± {100 * result.std:.2f} % "
                           f"({num_models} models, {result.seconds:.0f} s)")
            if csv_path:
                _append_csv(Path(csv_path), row)


def _append_csv(path: Path, row: dict) -> None:
    import pandas as pd

    from nasproxy._artifact import atomic_write_text

    flat = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in row.items()}
    frame = pd.DataFrame([flat])
    if path.exists():
        frame = pd.concat([pd.read_csv(path), frame], ignore_index=True)
    atomic_write_text(path, frame.to_csv(index=False))


@main.command()
@click.argument("proxy_file", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Image to write (.png or .pdf).")
@click.option("--max-per-class", type=int, default=10, show_default=True)
@_friendly_errors
def show(proxy_file, out, max_per_class):
    """Draw a proxy's images as a class-by-row grid."""
    from nasproxy._artifact import Proxy
    from nasproxy._viz import proxy_grid, save_figure

    proxy = Proxy.load(proxy_file)
    save_figure(proxy_grid(proxy, max_per_class=max_per_class), out)
    click.echo(f"wrote {out}")


@main.command()
@click.argument("proxy_file", type=click.Path(dir_okay=False))
@_friendly_errors
def info(proxy_file):
    """Print a proxy's provenance as JSON."""
    from nasproxy._artifact import Proxy

    proxy = Proxy.load(proxy_file)
    meta = {k: v for k, v in proxy.meta.items() if k != "loss_history"}
    click.echo(json.dumps({"images": list(proxy.images.shape), **meta}, indent=2))


@main.command("list")
@click.argument("what", type=click.Choice(["datasets", "models", "methods"]))
def list_(what):
    """List registered datasets, models or condensation methods."""
    if what == "datasets":
        from nasproxy.data import DATASETS as registry
    elif what == "models":
        from nasproxy.models import MODELS as registry
    else:
        from nasproxy.condense import CONDENSERS as registry
    for name in registry.names():
        click.echo(name)


if __name__ == "__main__":
    main()
