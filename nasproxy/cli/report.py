"""``nasproxy report``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from nasproxy.cli._common import _friendly_errors, main
from nasproxy.cli.studies import _storages


@main.command()
@click.option("--dataset", default="fashion-mnist", show_default=True, help="Only studies of this dataset.")
@click.option("--space", help="Only studies of this search space (its name, e.g. tiny or paper720).")
@_storages
@click.option("--study", "studies", multiple=True, help="Only these studies (repeatable).")
@click.option("--csv", "csvs", multiple=True, type=click.Path(), help="A search's CSV export (repeatable).")
@click.option("--truth", help="The ground-truth study (default: the one study of --proxy full).")
@click.option(
    "--archs",
    "archs_file",
    type=click.Path(),
    help="Only the architecture ids listed in this file (one per line, # comments), in every study.",
)
@click.option(
    "--versus",
    help="The proxy compared with each other one, paired (default: ours where searched, else the best row).",
)
@click.option(
    "--out", type=click.Path(file_okay=False), help="Folder to write (default results/reports/DATASET-SPACE)."
)
@click.option("--bootstrap", "resamples", type=int, default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON to stdout.")
@click.option(
    "--readme/--no-readme", default=True, help="Write README.md into --out (--no-readme: the folder has its own)."
)
@_friendly_errors
def report(dataset, space, storages, studies, csvs, truth, archs_file, versus, out, resamples, seed, as_json, readme):
    """How well each proxy ranks architectures against the ground truth: table, figures, README."""
    from nasproxy._api import report as build
    from nasproxy._artifact import check_writable
    from nasproxy.report import comparisons_text, report_json, table_text, trend_lines

    default = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{dataset}-{space or 'studies'}")
    folder = Path(out or Path("results") / "reports" / default)
    check_writable(folder / "table.csv", what="--out")
    listed = None
    if archs_file:  # read before the studies load, so that a wrong path fails at once
        from nasproxy.search._select import read_arch_ids

        listed = read_arch_ids(archs_file)
    result = build(
        storages=storages,
        csvs=csvs,
        dataset=dataset,
        space=space,
        studies=studies,
        truth=truth,
        archs=listed,
        versus=versus,
        resamples=resamples,
        seed=seed,
        out=folder,
        readme=readme,
    )
    if as_json:
        click.echo(json.dumps(report_json(result)["table"], indent=2))
        return
    click.echo(table_text(result.table))
    ceiling = result.truth.ceiling.ceiling
    click.echo(f"ceiling (the ground truth's own noise): {'n/a' if ceiling is None else f'{ceiling:.2f}'}")
    conv = result.truth.convergence
    if conv is not None and conv.settled is not None:
        ci = conv.versus_repeats_ci
        click.echo(
            f"ground truth after {conv.half_epochs} against {result.truth.epochs} epochs: Spearman "
            f"{conv.spearman:.2f}, {conv.versus_repeats:+.2f} [{ci.low:+.2f}, {ci.high:+.2f}] against its networks' "
            f"agreement with each other: {'settled' if conv.settled else 'still changing (train it longer)'}"
        )
    for line in [*trend_lines(result.series), *comparisons_text(result)]:
        click.echo(line)
    written = "table.csv, table.md, comparisons.csv, preferences.csv, report.json, " + (
        "README.md and " if readme else ""
    )
    click.echo(f"wrote {folder}/: {written}figures (PNG, PDF)")
