"""What searches stored: ``studies`` (where each stands), ``merge`` and ``export``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nasproxy.cli._common import (
    _friendly_errors,
    main,
)

_storages = click.option(
    "--storage",
    "storages",
    multiple=True,
    envvar="NASPROXY_STORAGE",
    help="Optuna storage (journal path or URL) to read; repeatable (default: every journal in results/studies).",
)


@main.command()
@_storages
@click.option("--dataset", help="Only studies of this dataset.")
@click.option("--space", help="Only studies of this search space.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with the architectures running now) instead.")
@click.option(
    "--add-params",
    is_flag=True,
    help="First upgrade each --storage journal written before trials carried their axes as Optuna params "
    "(pause its workers; the original is kept as <journal>.before-params).",
)
@click.option(
    "--repair",
    is_flag=True,
    help="First repair each --storage journal: keep every readable record, set unreadable lines aside in a file "
    "beside it.",
)
@_friendly_errors
def studies(storages, dataset, space, as_json, add_params, repair):
    """Where each stored search stands: architectures done, running now, interrupted; worker hours; time left."""
    from nasproxy._errors import NasproxyError
    from nasproxy.report import default_storages
    from nasproxy.search._progress import study_progress

    sources = list(storages) or default_storages()
    if not sources:
        raise NasproxyError("no journal in results/studies; pass --storage (a journal file or a database URL)")
    if repair:
        from nasproxy.search._journal import repair_journal

        for source in sources:
            if "://" in source:
                raise NasproxyError(f"--repair mends journal files; {source} is a database URL")
            kept, repaired, side = repair_journal(Path(source))
            if repaired:
                click.echo(f"repaired {source}: {kept} records kept, {repaired} lines mended; set aside in {side}")
            else:
                click.echo(f"{source}: whole ({kept} records), nothing to repair")
    if add_params:
        from nasproxy.search._migrate import upgrade_journal

        for source in sources:
            if "://" in source:
                raise NasproxyError(f"--add-params upgrades journal files; {source} is a database URL")
            given, kept = upgrade_journal(Path(source))
            click.echo(f"upgraded {source}: {given} trials given their axes as params; the original is {kept}")
    found = study_progress(sources, dataset=dataset, space=space)
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in found], indent=2))
        return
    if not found:
        click.echo("no studies" + (" of that dataset and space" if dataset or space else ""))
        return
    from nasproxy.search._estimate import duration_text

    width = max(len(p.name) for p in found)
    header = ("study", "proxy", "done", "running", "interrupted", "worker h", "last done (UTC)", "left", "ETA")
    line = f"{{:<{width}}}  {{:<14}} {{:>5}} {{:>7}} {{:>11}} {{:>8}}  {{:<16}} {{:>20}} {{:>7}}"
    click.echo(line.format(*header))
    for p in found:
        last = p.last_done.strftime("%Y-%m-%d %H:%M") if p.last_done else "-"
        hours = f"{p.worker_seconds / 3600:.2f}"
        left = "-" if p.left is None else f"{duration_text(p.left.seconds)} ({duration_text(p.left.high)})"
        left += "*" if p.left_priced_on else ""
        eta = "-" if p.eta_seconds is None else duration_text(p.eta_seconds)
        click.echo(line.format(p.name, p.proxy, p.done, len(p.running), p.interrupted, hours, last, left, eta))
    if any(p.left is not None for p in found):
        click.echo(
            "left: the worker time its sweeps' remaining architectures will take (in brackets: likely at most), "
            "re-fitted to those finished; ETA: at the pace of the workers training now"
        )
    for machine in sorted({p.left_priced_on for p in found if p.left_priced_on}):
        click.echo(
            f"*: the machine that finished the latest has finished too few to price the rest; priced at the pace of "
            f"{machine}, which it may not share"
        )


@main.command()
@click.argument("source")
@click.option("--into", required=True, help="The storage (journal path or URL) that receives the studies.")
@_friendly_errors
def merge(source, into):
    """Copy the studies of SOURCE (a journal or URL) into --into, each architecture once (e.g. a GPU run)."""
    from nasproxy.search._merge import merge_studies

    for m in merge_studies(source, into):
        state = "new study" if m.created else "existing study"
        click.echo(f"{m.study} ({state}): {m.added} architectures added, {m.already} already there")


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
