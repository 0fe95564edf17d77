"""Worker claims and liveness: which architectures are complete, which are being trained by a live worker,
and which claims died with their worker.

Each trial is one architecture. Workers pick architectures that are neither complete nor being trained by
a live worker; if two workers still pick the same one, a completed trial wins, else the one with the lower
number, and the other steps back, so every architecture is completed exactly once. A worker that dies
leaves a RUNNING trial: on the same host its dead process id reveals it at once, elsewhere its heartbeat
goes stale; either way the trial is marked FAIL and the architecture is trained again. Only Optuna's public API is used.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

HEARTBEAT_SECONDS = 20.0
STALE_SECONDS = 120.0


def completed_architectures(study, trials: list | None = None) -> dict[str, Any]:
    """arch id -> its first completed trial (by trial number); from ``trials`` where the caller has read them."""
    from optuna.trial import TrialState

    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    done: dict[str, Any] = {}
    complete = (t for t in trials if t.state == TrialState.COMPLETE)
    for t in sorted(complete, key=lambda t: t.number):
        arch = t.user_attrs.get("arch_id")
        if arch is not None and "duplicate_of" not in t.user_attrs:
            done.setdefault(arch, t)
    return done


def alive(trial, now: float) -> bool:
    """Whether the worker that claimed ``trial`` still runs: its process (same host) or its heartbeat."""
    attrs = trial.user_attrs
    if attrs.get("host") == socket.gethostname() and "pid" in attrs:
        try:
            os.kill(int(attrs["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
    # a trial another worker has just asked for has no attributes yet: its start time stands in for them
    started = trial.datetime_start.timestamp() if trial.datetime_start is not None else 0.0
    return now - float(attrs.get("heartbeat", started)) < STALE_SECONDS


def fail_stale(study, trials) -> None:
    """Mark FAIL the RUNNING trials whose worker is gone, so their architectures are trained again."""
    from optuna.trial import TrialState

    now = time.time()
    for t in trials:
        if t.state == TrialState.RUNNING and not alive(t, now):
            try:
                study.tell(t.number, state=TrialState.FAIL)
            except (ValueError, RuntimeError, KeyError):
                pass  # another worker got there first


class Heartbeat:
    """While scoring, stamp the trial every ``HEARTBEAT_SECONDS`` so that other workers see it alive."""

    def __init__(self, trial) -> None:
        self._trial = trial
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._trial.set_user_attr("heartbeat", time.time())
            except Exception:  # noqa: BLE001 - a missed heartbeat only risks a re-run, never a loss
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def rival_claim(study, arch: str, number: int) -> int | None:
    """The number of another trial that completed ``arch``, or of an earlier one training it alive, if any.

    Among trials in training the lower number wins. A completed trial wins whatever its number: a worker
    slowed between asking for its trial and naming its architecture may name one that a later trial has
    trained and completed meanwhile, unseen by that trial's looks."""
    from optuna.trial import TrialState

    now = time.time()
    for t in study.get_trials(deepcopy=False):
        if t.number == number or t.user_attrs.get("arch_id") != arch or "duplicate_of" in t.user_attrs:
            continue
        if t.state == TrialState.COMPLETE or (t.number < number and t.state == TrialState.RUNNING and alive(t, now)):
            return t.number
    return None
