"""Merging studies from one storage into another: a journal written on a lent GPU machine into the committed
experiment's journal, each architecture kept once."""

from __future__ import annotations

from dataclasses import dataclass

from nasproxy._errors import NasproxyError


@dataclass(frozen=True)
class Merged:
    study: str
    added: int  # completed architectures copied over
    already: int  # completed in the destination already (the destination's trial is kept)
    created: bool  # the study did not exist in the destination


def empty_copy(study, storage):
    """A study of the same name, directions and attributes in ``storage``, with no trials yet."""
    import optuna

    copy = optuna.create_study(study_name=study.study_name, storage=storage, directions=study.directions)
    for key, value in study.user_attrs.items():
        copy.set_user_attr(key, value)
    return copy


def merge_studies(source: str, into: str) -> list[Merged]:
    """Copy every study of ``source`` into ``into``: its completed trials whose architecture the destination
    has not completed (the destination's trial wins a tie, so that merging twice adds nothing), with their
    values, parameters and attributes; a study the destination lacks is created with the source's
    attributes. Running, failed and interrupted trials stay behind: their architectures are trained again
    by the next search on the destination."""
    import optuna

    from nasproxy.search._claims import completed_architectures
    from nasproxy.search._storage import open_storage, stored_studies

    if source == into:
        raise NasproxyError("--into is the storage being merged; name another storage")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    destination = open_storage(into)
    existing = set(optuna.get_all_study_names(destination))
    results = []
    for _, storage, name in stored_studies([source]):
        src = optuna.load_study(study_name=name, storage=storage)
        created = name not in existing
        if created:
            dst = empty_copy(src, destination)
        else:
            dst = optuna.load_study(study_name=name, storage=destination)
            if dst.user_attrs.get("protocol") != src.user_attrs.get("protocol"):
                raise NasproxyError(
                    f"study {name} has another protocol in {into} than in {source}; their scores are not comparable"
                )
        have = completed_architectures(dst)
        new = [t for arch, t in completed_architectures(src).items() if arch not in have]
        for trial in new:
            dst.add_trial(trial)
        results.append(Merged(name, len(new), len(completed_architectures(src)) - len(new), created))
    return results
