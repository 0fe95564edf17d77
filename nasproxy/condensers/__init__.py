"""Condensers and coreset selectors: each is one file that registers itself in ``CONDENSERS``."""

from nasproxy.condensers import dc, dm, dsa, forgetting, herding, kcenter, random  # noqa: F401 - they register
from nasproxy.condensers._base import CONDENSERS, Condenser, CondenseResult, RunContext, register_condenser
from nasproxy.condensers._matching import ClassGradients, gradient_distance
from nasproxy.condensers._run import CondenseJob, condense, condenser_for

__all__ = [
    "CONDENSERS",
    "ClassGradients",
    "CondenseJob",
    "CondenseResult",
    "Condenser",
    "RunContext",
    "condense",
    "condenser_for",
    "gradient_distance",
    "register_condenser",
]
