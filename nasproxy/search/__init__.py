"""Architecture search over a space on a proxy, stored in Optuna.

Layout: ``proxies/`` (what scores an architecture), ``_context`` (a request and what a process loads for
it), ``_plan`` (targets and cost estimate), ``_claims`` (exactly-once claims and liveness), ``_worker`` (the
worker loop and processes), ``_select`` (architecture lists), ``_export`` (CSV exports), ``_progress``
(where each stored search stands), ``_storage`` (Optuna storages), ``_cost`` (FLOP counts and measured
rates).
"""

from nasproxy._callable_package import make_callable
from nasproxy.search._claims import completed_architectures
from nasproxy.search._context import SearchContext, SearchRequest
from nasproxy.search._export import export_study
from nasproxy.search._plan import Plan, plan_search
from nasproxy.search._progress import StudyProgress, study_progress
from nasproxy.search._select import chosen_architectures, read_arch_ids, top_architectures
from nasproxy.search._worker import run_search, work
from nasproxy.search.proxies import PROXIES, Protocol, Proxy, Runtime, Score, TrainingFree, load_proxy, register_proxy

__all__ = [
    "PROXIES",
    "Plan",
    "Protocol",
    "Proxy",
    "Runtime",
    "Score",
    "SearchContext",
    "SearchRequest",
    "StudyProgress",
    "TrainingFree",
    "chosen_architectures",
    "completed_architectures",
    "export_study",
    "load_proxy",
    "plan_search",
    "read_arch_ids",
    "register_proxy",
    "run_search",
    "study_progress",
    "top_architectures",
    "work",
]


make_callable(__name__, "search")  # nasproxy.search(...) runs the `nasproxy search` flow in Python
