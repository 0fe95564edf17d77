"""Where each stored search stands: architectures done, being trained by a live worker, or interrupted
(their worker died or their scoring raised), and the worker time spent. Read-only, so it is safe beside
running workers on any storage."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from nasproxy.search._claims import alive, completed_architectures
from nasproxy.search._estimate import PLACE, Estimate, features, finished_at, refit_to_trials, timed_in_one_place

TARGETS_ATTR = "targets"  # {architecture: [forward FLOPs, activation elements]} of every sweep of the study


@dataclass(frozen=True)
class StudyProgress:
    name: str
    proxy: str
    dataset: str | None
    space: str | None
    done: int  # architectures with a completed trial
    running: tuple[str, ...]  # architectures a live worker is training now
    interrupted: int  # not done, nor running: their worker died or raised; the next search trains them again
    worker_seconds: float  # summed over the completed architectures
    last_done: datetime | None  # when the latest architecture completed (UTC)
    source: str
    targets: int = 0  # architectures its sweeps set out to complete (0: not recorded)
    # the worker seconds the targets not done will take, re-fitted to the architectures finished on the machine
    # that finished the latest (None: fewer than MIN_FINISHED finished on any one machine, or nothing left)
    left: Estimate | None = None
    # the machine whose pace priced ``left`` where the latest one finished too few (None: the latest one)
    left_priced_on: str | None = None

    @property
    def eta_seconds(self) -> float | None:
        """Wall seconds until the targets are done, at the pace of the workers training now."""
        if self.left is None or not self.running:
            return None
        return self.left.seconds / len(self.running)

    def as_dict(self) -> dict:
        return {
            "study": self.name,
            "proxy": self.proxy,
            "dataset": self.dataset,
            "space": self.space,
            "done": self.done,
            "running": list(self.running),
            "interrupted": self.interrupted,
            "worker_seconds": round(self.worker_seconds, 1),
            "last_done": self.last_done.isoformat(timespec="seconds") if self.last_done else None,
            "storage": self.source,
            "targets": self.targets,
            "left_worker_seconds": None if self.left is None else round(self.left.seconds, 1),
            "left_likely": None if self.left is None else [round(self.left.low, 1), round(self.left.high, 1)],
            "left_priced_on": self.left_priced_on,
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
        }


def study_progress(
    storages: Sequence[str], *, dataset: str | None = None, space: str | None = None
) -> list[StudyProgress]:
    """The progress of every study in ``storages`` (of this dataset and space where given), by name."""
    import optuna

    from nasproxy.search._storage import stored_studies

    found = []
    for url, storage, name in stored_studies(storages):
        progress = _progress(optuna.load_study(study_name=name, storage=storage), url)
        if (dataset is None or progress.dataset == dataset) and (space is None or progress.space == space):
            found.append(progress)
    return sorted(found, key=lambda p: p.name)


def _progress(study, source: str) -> StudyProgress:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = completed_architectures(study, trials)
    now = time.time()
    running, interrupted = set(), set()
    for t in trials:
        arch = t.user_attrs.get("arch_id")
        if arch is None or arch in done or "duplicate_of" in t.user_attrs:  # a duplicate claim stepped back
            continue
        if t.state == TrialState.RUNNING and alive(t, now):
            running.add(arch)
        elif t.state in (TrialState.RUNNING, TrialState.FAIL):
            interrupted.add(arch)
    finished = [t.datetime_complete for t in done.values() if t.datetime_complete is not None]
    last = max(finished).astimezone(timezone.utc) if finished else None
    protocol = study.user_attrs.get("protocol", {})
    targets = study.user_attrs.get(TARGETS_ATTR, {})
    return StudyProgress(
        name=study.study_name,
        proxy=protocol.get("proxy", "?"),
        dataset=protocol.get("dataset"),
        space=study.user_attrs.get("space", {}).get("name"),
        done=len(done),
        running=tuple(sorted(running)),
        interrupted=len(interrupted - running),
        worker_seconds=sum(float(t.user_attrs.get("seconds", 0.0)) for t in done.values()),
        last_done=last,
        source=source,
        targets=len(targets),
        **_left(targets, done),
    )


def _left(targets: dict, done: dict) -> dict:
    """The targets not done (``left``), priced by the cost model fitted to the finished architectures of the
    machine, device and backend that finished the latest. A new session's machine has often finished too
    few (or only resumed ones) for hours: then the place that finished the most prices them, and
    ``left_priced_on`` names its machine, whose pace the latest one may not share."""
    remaining = [a for a in targets if a not in done]
    if not remaining or not done:
        return {}
    trials = [t for a, t in done.items() if a in targets]
    x = lambda arch: features(*map(float, targets[arch]))  # noqa: E731
    latest = tuple(max(done.values(), key=finished_at).user_attrs.get(k) for k in PLACE)
    places = Counter(tuple(t.user_attrs.get(k) for k in PLACE) for t in trials if timed_in_one_place(t))
    for place in [latest] + [p for p, _ in places.most_common() if p != latest]:
        estimate = refit_to_trials(trials, dict(zip(PLACE, place)), x, remaining)
        if estimate is not None:
            return {"left": estimate, "left_priced_on": None if place == latest else place[0]}
    return {}
