"""Proxies: ways to score an architecture so that a search can rank a space. Each is a ``Proxy`` subclass
registered in ``PROXIES`` (one file each: a new proxy is a new file here, ``register_proxy`` in your own
code, or a plugin, ``--condensed set.py:Class``, see ``_plugins``): training on a condensed set (a condensed set,
one proxy per condenser), early-stopped or full real-data training, and training-free scores."""

from nasproxy.search.proxies import _training, _training_free  # noqa: F401 - they register themselves
from nasproxy.search.proxies._base import PROXIES, Protocol, Proxy, Runtime, Score, Work, register_proxy
from nasproxy.search.proxies._plugins import load_proxy
from nasproxy.search.proxies._training import FILE_PROXY_METHODS, FULL_EPOCHS, FULL_REPEATS, early_stopping_steps
from nasproxy.search.proxies._training_free import TrainingFree

__all__ = [
    "FILE_PROXY_METHODS",
    "FULL_EPOCHS",
    "FULL_REPEATS",
    "PROXIES",
    "Protocol",
    "Proxy",
    "Runtime",
    "Score",
    "TrainingFree",
    "Work",
    "early_stopping_steps",
    "load_proxy",
    "register_proxy",
]
