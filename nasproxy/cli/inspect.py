"""Looking at condensed sets, registries and search spaces: ``show``, ``info``, ``list``, ``spaces``."""

from __future__ import annotations

import json

import click

from nasproxy.cli._common import (
    _friendly_errors,
    main,
)


@main.command()
@click.argument("condensed_set", type=click.Path())
@click.option("--out", type=click.Path(), required=True, help="Image to write (.png or .pdf).")
@click.option("--max-per-class", type=int, default=10, show_default=True)
@_friendly_errors
def show(condensed_set, out, max_per_class):
    """Draw a condensed set's images as a class-by-row grid."""
    from nasproxy._artifact import CondensedSet, check_writable
    from nasproxy._viz import image_grid, save_figure

    check_writable(out, what="--out")
    condensed = CondensedSet.load(condensed_set)
    save_figure(image_grid(condensed, max_per_class=max_per_class), out)
    click.echo(f"wrote {out}")


@main.command()
@click.argument("condensed_set", type=click.Path())
@_friendly_errors
def info(condensed_set):
    """Print a condensed set's provenance as JSON."""
    from nasproxy._artifact import CondensedSet

    condensed = CondensedSet.load(condensed_set)
    meta = {k: v for k, v in condensed.meta.items() if k != "loss_history"}
    click.echo(json.dumps({"images": list(condensed.images.shape), **meta}, indent=2))


@main.command("list")
@click.argument("what", type=click.Choice(["datasets", "models", "condensers", "proxies", "methods"]), metavar="WHAT")
def list_(what):
    """List registered datasets, models, condensers (`condense --condenser`) or proxies (`search --proxy`)."""
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
