"""nasproxy: neural architecture search on condensed dataset proxies.

The public API is what this module exports; everything in ``nasproxy._*`` modules is private. Names are
imported on first use so that ``nasproxy --help`` does not pay for importing torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "CondensedSet": "nasproxy._artifact",
    "ArtifactError": "nasproxy._errors",
    "DataNotFoundError": "nasproxy._errors",
    "IncompatibleError": "nasproxy._errors",
    "NasproxyError": "nasproxy._errors",
    "UnknownNameError": "nasproxy._errors",
    "CONDENSERS": "nasproxy.condensers",
    "Condenser": "nasproxy.condensers",
    "register_condenser": "nasproxy.condensers",
    "condense": "nasproxy.condensers._run",
    "DATASETS": "nasproxy.data",
    "Dataset": "nasproxy.data",
    "SplitSpec": "nasproxy.data",
    "load_dataset": "nasproxy.data",
    "BACKENDS": "nasproxy.backends",
    "apply_backend": "nasproxy.backends",
    "TrainConfig": "nasproxy.engine",
    "configure_process": "nasproxy.engine",
    "accuracy": "nasproxy.engine",
    "fit": "nasproxy.engine",
    "resolve_device": "nasproxy.engine",
    "train_from_scratch": "nasproxy.engine",
    "EvalResult": "nasproxy.evaluate",
    "evaluate_condensed_set": "nasproxy.evaluate",
    "evaluate_proxy": "nasproxy.evaluate",  # evaluate_condensed_set's earlier name
    "SearchSpace": "nasproxy.spaces",
    "GridSpace": "nasproxy.spaces",
    "SPACES": "nasproxy.spaces",
    "load_space": "nasproxy.spaces",
    "build_report": "nasproxy.report",
    "load_studies": "nasproxy.report",
    "rank_statistics": "nasproxy.report",
    "write_report": "nasproxy.report",
    "SearchRequest": "nasproxy.search",
    "SearchResult": "nasproxy._api",
    "BudgetSpent": "nasproxy._errors",
    "run_search": "nasproxy.search",
    "PROXIES": "nasproxy.search",
    "MODELS": "nasproxy.models",
    "ConvNetSpec": "nasproxy.models",
    "build_model": "nasproxy.models",
    "register_model": "nasproxy.models",
}

__all__ = sorted([*_EXPORTS, "search", "report", "__version__"])


# the commands' Python counterparts, callable packages: nasproxy.search(...), nasproxy.report(...)
_CALLABLE_PACKAGES = ("search", "report")


def __getattr__(name: str):
    if name in _CALLABLE_PACKAGES:
        return importlib.import_module(f"nasproxy.{name}")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nasproxy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
