"""Architecture search over a space on a proxy, stored in Optuna."""

from nasproxy.search._proxies import PROXIES, Protocol, ProxyKind, Score
from nasproxy.search._runner import (
    SearchRequest,
    completed_architectures,
    export_study,
    plan_search,
    read_arch_ids,
    run_search,
    top_architectures,
    work,
)

__all__ = [
    "PROXIES",
    "Protocol",
    "ProxyKind",
    "Score",
    "SearchRequest",
    "completed_architectures",
    "export_study",
    "plan_search",
    "read_arch_ids",
    "run_search",
    "top_architectures",
    "work",
]
