"""Condensers and coreset selectors: each is one file that registers itself in ``CONDENSERS``."""

from nasproxy.condensers import dc, random  # noqa: F401 - importing registers them
from nasproxy.condensers._base import CONDENSERS, Condenser, CondenseResult, RunContext, register_condenser
from nasproxy.condensers._matching import ClassGradients, gradient_distance

__all__ = [
    "CONDENSERS",
    "ClassGradients",
    "CondenseResult",
    "Condenser",
    "RunContext",
    "gradient_distance",
    "register_condenser",
]
