"""Exactly-once claims: which other trial, if any, a worker steps back for before and after training."""

import subprocess
import sys

import optuna

from nasproxy.search._claims import rival_claim
from tests._helpers import claim


def test_a_trial_named_late_steps_back_for_a_later_one_that_completed_meanwhile():
    study = optuna.create_study()
    slow = study.ask()  # asked first, but its worker stalls before it names its architecture
    claim(slow, None)
    later = study.ask()
    claim(later, "a")
    assert rival_claim(study, "a", later.number) is None  # both looks of the later trial see no claim of "a"
    study.tell(later, 1.0)
    slow.set_user_attr("arch_id", "a")
    assert rival_claim(study, "a", slow.number) == later.number
    assert rival_claim(study, "b", slow.number) is None


def test_of_two_live_claims_in_training_the_earlier_wins():
    study = optuna.create_study()
    first, second = study.ask(), study.ask()
    claim(first, "a")
    claim(second, "a")
    assert rival_claim(study, "a", second.number) == first.number
    assert rival_claim(study, "a", first.number) is None


def test_dead_failed_and_stepped_back_claims_are_no_rivals():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    study = optuna.create_study()
    orphan = study.ask()
    claim(orphan, "a", pid=dead.pid)
    failed = study.ask()
    claim(failed, "a")
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    stepped_back = study.ask()  # a duplicate of trial 0, between naming its rival and failing
    claim(stepped_back, "a")
    stepped_back.set_user_attr("duplicate_of", 0)
    later = study.ask()
    claim(later, "a")
    assert rival_claim(study, "a", later.number) is None
