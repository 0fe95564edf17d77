"""Exactly-once claims: which other trial, if any, a worker steps back for before and after training."""

import os
import socket
import subprocess
import sys
import time

import optuna

from nasproxy.search._claims import rival_claim


def _claim(trial, arch: str | None, *, pid: int | None = None) -> None:
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid() if pid is None else pid)
    trial.set_user_attr("heartbeat", time.time())
    if arch is not None:
        trial.set_user_attr("arch_id", arch)


def test_a_trial_named_late_steps_back_for_a_later_one_that_completed_meanwhile():
    study = optuna.create_study()
    slow = study.ask()  # asked first, but its worker stalls before it names its architecture
    _claim(slow, None)
    later = study.ask()
    _claim(later, "a")
    assert rival_claim(study, "a", later.number) is None  # both looks of the later trial see no claim of "a"
    study.tell(later, 1.0)
    slow.set_user_attr("arch_id", "a")
    assert rival_claim(study, "a", slow.number) == later.number
    assert rival_claim(study, "b", slow.number) is None


def test_of_two_live_claims_in_training_the_earlier_wins():
    study = optuna.create_study()
    first, second = study.ask(), study.ask()
    _claim(first, "a")
    _claim(second, "a")
    assert rival_claim(study, "a", second.number) == first.number
    assert rival_claim(study, "a", first.number) is None


def test_dead_failed_and_stepped_back_claims_are_no_rivals():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    study = optuna.create_study()
    orphan = study.ask()
    _claim(orphan, "a", pid=dead.pid)
    failed = study.ask()
    _claim(failed, "a")
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    stepped_back = study.ask()  # a duplicate of trial 0, between naming its rival and failing
    _claim(stepped_back, "a")
    stepped_back.set_user_attr("duplicate_of", 0)
    later = study.ask()
    _claim(later, "a")
    assert rival_claim(study, "a", later.number) is None
