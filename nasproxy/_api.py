"""The command line's flow in Python, of the same shape: ``nasproxy.condense`` (a condensed set),
``nasproxy.search(...)`` (a study and its trials) and ``nasproxy.report(...)`` (the report object), keyword-only,
writing files only where told to."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class SearchResult:
    """What a search holds now: its study, one row per completed architecture (best first), and whether
    every architecture it targets is done (False where ``hours`` ran out first)."""

    study_name: str
    storage: str
    trials: pd.DataFrame
    done: int
    total: int
    csv: Path | None = None

    @property
    def finished(self) -> bool:
        return self.done >= self.total


def search(
    *,
    space: str,
    proxy: str,
    storage: str | os.PathLike,
    proxy_file: str | os.PathLike | None = None,
    dataset: str | None = None,
    sample: int | None = None,
    sample_seed: int = 0,
    archs: Sequence[str] | None = None,
    epochs: int | None = None,
    repeats: int | None = None,
    seed: int = 0,
    workers: int = 1,
    device: str = "auto",
    devices: Sequence[str] | None = None,
    hours: float | None = None,
    csv: str | os.PathLike | None = None,
    progress: bool = False,
    **options,
) -> SearchResult:
    """``nasproxy search``: train (or score) every architecture of ``space`` (or the seeded ``sample``, or
    ``archs``) with ``proxy`` into ``storage`` (a journal path or a database URL), resumably. ``options`` are
    the other fields of :class:`nasproxy.SearchRequest` (``holdout``, ``batch_size``, ``backend``, ...).
    Writes the CSV export only to ``csv``."""
    from nasproxy._errors import BudgetSpent
    from nasproxy.search import SearchRequest, completed_architectures, plan_search, run_search
    from nasproxy.search._export import study_rows
    from nasproxy.search._worker import completed_count

    request = SearchRequest(
        space=space,
        proxy=proxy,
        storage=str(storage),
        proxy_file=None if proxy_file is None else str(proxy_file),
        dataset=dataset,
        sample=sample,
        sample_seed=sample_seed,
        only=None if archs is None else tuple(archs),
        epochs=epochs,
        repeats=repeats,
        seed=seed,
        device=device,
        devices=None if devices is None else tuple(devices),
        hours=hours,
        **options,
    )
    plan, ctx = plan_search(request)
    try:
        written = run_search(request, workers=workers, progress=progress, plan=plan, ctx=ctx, csv=csv)
    except BudgetSpent:
        written = None if csv is None else Path(csv)
    study = ctx.open_study(create=False)
    done = completed_count(request, completed_architectures(study), plan.targets)
    rows = pd.DataFrame(study_rows(study))
    if len(rows):
        rows = rows.sort_values(["value", "arch_id"], ascending=[False, True]).reset_index(drop=True)
    return SearchResult(plan.study_name, plan.storage_url, rows, done, plan.total, written)


def report(
    *,
    storages: Sequence[str | os.PathLike],
    dataset: str = "fashion-mnist",
    space: str | None = None,
    studies: Sequence[str] = (),
    truth: str | None = None,
    archs: Sequence[str] | None = None,
    versus: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
    out: str | os.PathLike | None = None,
):
    """``nasproxy report``: how well each proxy study in ``storages`` ranks architectures against the ground
    truth. Returns the :class:`nasproxy.report.Report` (tables as DataFrames; ``nasproxy.report.figures``
    draws its figures); writes its folder only to ``out``."""
    from nasproxy.report._build import build_report
    from nasproxy.report._load import load_studies
    from nasproxy.report._write import write_report

    found = load_studies([str(s) for s in storages], dataset=dataset, space=space, names=studies)
    result = build_report(
        found, truth=truth, resamples=resamples, seed=seed, dataset=dataset, space=space, versus=versus,
        architectures=archs,
    )  # fmt: skip
    if out is not None:
        write_report(result, Path(out))
    return result
