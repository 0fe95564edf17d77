"""Exactly-once claims when a worker is slow between asking for its trial and naming its architecture."""

import os
import socket
import subprocess
import sys
import threading
import time

import optuna

from nasproxy.search._claims import earlier_claim


def _claim(trial, arch: str | None, *, pid: int | None = None) -> None:
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid() if pid is None else pid)
    trial.set_user_attr("heartbeat", time.time())
    if arch is not None:
        trial.set_user_attr("arch_id", arch)


def test_an_earlier_trial_that_names_the_architecture_late_still_wins():
    study = optuna.create_study()
    slow = study.ask()  # asked first, but its worker stalls before it names its architecture
    _claim(slow, None)
    later = study.ask()
    _claim(later, "a")
    naming = threading.Timer(0.5, slow.set_user_attr, ("arch_id", "a"))
    naming.start()
    start = time.monotonic()
    assert earlier_claim(study, "a", later.number, poll_seconds=0.05) == slow.number
    assert time.monotonic() - start >= 0.4
    naming.join()
    # the earlier trial does not wait for the later one, and another architecture is no rival
    assert earlier_claim(study, "a", slow.number) is None
    assert earlier_claim(study, "b", later.number) is None


def test_an_unnamed_earlier_trial_of_a_dead_worker_holds_nothing_up():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    study = optuna.create_study()
    orphan = study.ask()
    _claim(orphan, None, pid=dead.pid)
    finished = study.ask()
    _claim(finished, None)
    study.tell(finished, state=optuna.trial.TrialState.FAIL)
    later = study.ask()
    _claim(later, "a")
    start = time.monotonic()
    assert earlier_claim(study, "a", later.number) is None
    assert time.monotonic() - start < 1.0


def test_a_completed_or_live_earlier_claim_wins_and_a_stepped_back_one_does_not():
    study = optuna.create_study()
    done = study.ask()
    _claim(done, "a")
    study.tell(done, 1.0)
    stepped_back = study.ask()
    _claim(stepped_back, "b")
    stepped_back.set_user_attr("duplicate_of", 0)
    live = study.ask()
    _claim(live, "c")
    later = study.ask()
    assert earlier_claim(study, "a", later.number) == done.number
    assert earlier_claim(study, "b", later.number) is None
    assert earlier_claim(study, "c", later.number) == live.number
