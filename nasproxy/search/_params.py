"""Trials that Optuna's own tools can read: every trial of a grid space carries its architecture's axes as
Optuna params with the space's distributions, in a sweep too (where nasproxy, not a sampler, picks the
architecture), so that ``optuna-dashboard``, ``study.trials_dataframe()`` and ``optuna.importance`` see width,
depth, normalisation, activation and pooling."""

from __future__ import annotations

from functools import cache
from typing import Any


def distributions(space) -> dict:
    """One categorical distribution per axis of a grid space; none for a Python space without ``axes``."""
    from optuna.distributions import CategoricalDistribution

    return {axis: CategoricalDistribution(values) for axis, values in getattr(space, "axes", {}).items()}


@cache
def _sampler_class() -> type:
    import optuna  # heavy: only once a search runs

    class ChosenArchitecture(optuna.samplers.BaseSampler):
        """A sampler that "samples" exactly the architecture the sweep chose (:meth:`choose` first): Optuna's
        own path for recording params, with nothing random in it."""

        def __init__(self) -> None:
            self._values: dict[str, Any] = {}

        def choose(self, values: dict[str, Any]) -> None:
            self._values = dict(values)

        def infer_relative_search_space(self, study, trial):
            return {}

        def sample_relative(self, study, trial, search_space):
            return {}

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self._values[param_name]

    return ChosenArchitecture


def chosen_architecture_sampler():
    """A new sampler for a sweep's worker (see :func:`record_params`)."""
    return _sampler_class()()


def record_params(trial, space, arch: str, sampler) -> None:
    """Give ``trial`` the axes of ``arch`` as params (grid spaces; a sweep's ``sampler`` supplies them)."""
    dists = distributions(space)
    if not dists or sampler is None:
        return
    spec = space.get(arch).spec
    sampler.choose({axis: spec[axis] for axis in dists})
    for axis, dist in dists.items():
        trial.suggest_categorical(axis, dist.choices)
