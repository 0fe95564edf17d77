"""Upgrading a journal written before sweep trials carried Optuna params: the same studies, trials, values,
states, times and attributes, in the same order, and every trial of a grid space given its architecture's
axes as params (from its ``spec`` attribute), so that Optuna's tools read the old studies as the new ones."""

from __future__ import annotations

from pathlib import Path

from nasproxy._errors import NasproxyError


def add_axes_as_params(source: Path, target: Path) -> int:
    """Write ``source``'s studies into the new journal ``target`` with the axes as params; returns how many
    trials were given params. ``source`` is only read; rename ``target`` over it once satisfied."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import FrozenTrial

    from nasproxy.search._merge import empty_copy
    from nasproxy.search._storage import open_storage

    if target.exists():
        raise NasproxyError(f"{target} exists; the upgrade writes a new journal")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    old = open_storage(str(source), read_only=True)
    if old is None:
        raise NasproxyError(f"no journal at {source}")
    new = open_storage(str(target))
    given = 0
    for summary in sorted(old.get_all_studies(), key=lambda s: s._study_id):
        study = optuna.load_study(study_name=summary.study_name, storage=old)
        copy = empty_copy(study, new)
        axes = (study.user_attrs.get("space") or {}).get("axes") or {}
        dists = {axis: CategoricalDistribution(values) for axis, values in axes.items()}
        for trial in study.get_trials(deepcopy=False):
            spec = trial.user_attrs.get("spec")
            params, distributions = trial.params, trial.distributions
            if (
                dists
                and not params
                and isinstance(spec, dict)
                and all(spec.get(a) in d.choices for a, d in dists.items())
            ):
                params, distributions = {a: spec[a] for a in dists}, dists
                given += 1
            copy.add_trial(
                FrozenTrial(
                    number=trial.number,
                    state=trial.state,
                    value=None,
                    values=trial.values,
                    datetime_start=trial.datetime_start,
                    datetime_complete=trial.datetime_complete,
                    params=params,
                    distributions=distributions,
                    user_attrs=trial.user_attrs,
                    system_attrs=trial.system_attrs,
                    intermediate_values=trial.intermediate_values,
                    trial_id=0,
                )
            )
    return given


def upgrade_journal(path: Path) -> tuple[int, Path]:
    """Give the trials of the journal ``path`` their axes as params, in place: the upgraded copy replaces it
    under its write lock, the original kept beside it (``<journal>.before-params``). Returns (trials given
    params, the kept original). Refuses if the journal grew meanwhile (pause its workers first)."""
    import os
    import shutil

    from nasproxy.search._journal import write_lock

    path = Path(path)
    if not path.is_file():
        raise NasproxyError(f"no journal at {path}")
    size = path.stat().st_size
    upgraded = path.with_name(path.name + ".upgrading")
    upgraded.unlink(missing_ok=True)
    try:
        given = add_axes_as_params(path, upgraded)
        kept = path.with_name(path.name + ".before-params")
        with write_lock(path):
            if path.stat().st_size != size:
                raise NasproxyError(f"{path} grew while it was upgraded; pause its workers and run the upgrade again")
            shutil.copy2(path, kept)
            os.replace(upgraded, path)
    finally:
        upgraded.unlink(missing_ok=True)
    return given, kept
