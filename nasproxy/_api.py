"""The command line's flow in Python, of the same shape: ``nasproxy.condense`` (a condensed set),
``nasproxy.search(...)`` (a study and its trials) and ``nasproxy.report(...)`` (the report object), keyword-only,
writing files only where told to."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nasproxy._errors import setting
from nasproxy.search._plan import Plan

if TYPE_CHECKING:  # pandas costs every command's start; only a finished search makes a frame
    import pandas as pd


@dataclass(frozen=True)
class SearchResult:
    """What a search holds now: its study, one row per completed architecture (best first), and whether
    every architecture it targets is done. ``budget_spent`` says why not where ``hours`` ran out first;
    ``plan`` is what the search set out to do (its targets and cost estimate)."""

    study_name: str
    storage: str
    trials: pd.DataFrame
    done: int
    total: int
    csv: Path | None = None
    budget_spent: str | None = None
    plan: Plan | None = field(default=None, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.done >= self.total


def search(
    *,
    space: str,
    proxy: str,
    storage: str | os.PathLike | None = None,
    proxy_file: str | os.PathLike | None = None,
    archs: Sequence[str] | None = None,
    devices: Sequence[str] | None = None,
    workers: int = 1,
    csv: str | os.PathLike | None = None,
    progress: bool = False,
    dry_run: bool = False,
    on_plan: Callable[[Plan], None] | None = None,
    **options,
) -> SearchResult:
    """``nasproxy search``: train (or score) every architecture of ``space`` (or the seeded ``sample``, or
    ``archs``) with ``proxy`` into ``storage`` (a journal path or a database URL; None: the study's journal
    under results/studies), resumably. ``options`` are the other fields of :class:`nasproxy.SearchRequest`
    (``dataset``, ``sample``, ``epochs``, ``repeats``, ``seed``, ``hours``, ``holdout``, ``backend``, ...).
    ``on_plan`` sees the plan (targets, estimate) before anything trains; ``dry_run`` stops there and
    writes nothing. Writes the CSV export only to ``csv`` ("default": results/search/<study>.csv)."""
    from nasproxy._errors import BudgetSpent
    from nasproxy.search import SearchRequest, completed_architectures, plan_search, run_search
    from nasproxy.search._export import EXPORT_DIR, study_rows
    from nasproxy.search._worker import completed_count

    request = SearchRequest(
        space=space,
        proxy=proxy,
        storage=None if storage is None else str(storage),
        proxy_file=None if proxy_file is None else str(proxy_file),
        only=None if archs is None else tuple(archs),
        devices=None if devices is None else tuple(devices),
        **options,
    )
    plan, ctx = plan_search(request, dry_run=dry_run)
    if on_plan is not None:
        on_plan(plan)
    if csv == "default":
        csv = EXPORT_DIR / f"{plan.study_name}.csv"
    written, spent = None, None
    if dry_run:
        study = ctx.existing_study()
    else:
        try:
            written = run_search(request, workers=workers, progress=progress, plan=plan, ctx=ctx, csv=csv)
        except BudgetSpent as exc:
            spent = str(exc)
            written = None if csv is None else Path(csv)
        study = ctx.open_study(create=False)
    import pandas as pd

    rows = pd.DataFrame(study_rows(study) if study is not None else [])
    if len(rows):
        rows = rows.sort_values(["value", "arch_id"], ascending=[False, True]).reset_index(drop=True)
    done = plan.done if study is None else completed_count(request, completed_architectures(study), plan.targets)
    return SearchResult(plan.study_name, plan.storage_url, rows, done, plan.total, written, spent, plan)


def report(
    *,
    storages: Sequence[str | os.PathLike] = (),
    csvs: Sequence[str | os.PathLike] = (),
    dataset: str = "fashion-mnist",
    space: str | None = None,
    studies: Sequence[str] = (),
    truth: str | None = None,
    archs: Sequence[str] | None = None,
    versus: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    readme: bool = True,
):
    """``nasproxy report``: how well each proxy study in ``storages`` (and each search export in ``csvs``)
    ranks architectures against the ground truth. No storages and no csvs: every journal under
    results/studies. Returns the :class:`nasproxy.report.Report` (tables as DataFrames;
    ``nasproxy.report.figures`` draws its figures); writes its folder (with a README.md unless ``readme`` is
    False) only to ``out``."""
    from nasproxy._errors import NasproxyError
    from nasproxy.report._build import build_report
    from nasproxy.report._load import default_storages, load_csv, load_studies
    from nasproxy.report._write import write_report

    if not (space or studies or csvs):
        raise NasproxyError(
            f"pass {setting('space')} NAME (or {setting('studies')} / {setting('csvs')}) to say which searches to "
            "compare"
        )
    found = [load_csv(path) for path in csvs]
    sources = [str(s) for s in storages] or ([] if csvs and not studies else default_storages())
    if sources or studies:
        found += load_studies(sources, dataset=dataset, space=space, names=studies)
    if not found:
        raise NasproxyError(
            f"no study of {dataset}/{space} in {', '.join(sources) or 'results/studies'}; run `nasproxy search` "
            f"first or pass {setting('storages')}"
        )
    result = build_report(
        found, truth=truth, resamples=resamples, seed=seed, dataset=dataset, space=space, versus=versus,
        architectures=archs,
    )  # fmt: skip
    if out is not None:
        write_report(result, Path(out), readme=readme)
    return result
