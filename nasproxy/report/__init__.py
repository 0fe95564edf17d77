"""How well each proxy ranks architectures: statistics (:func:`rank_statistics`, :func:`noise_ceiling`,
:func:`design_preferences`) on plain DataFrames, a whole report over finished searches
(:func:`load_studies`, :func:`build_report`, :func:`write_report`), and its figures (``plot_*``, each drawing
on ``ax=`` and returning the Axes)."""

from nasproxy._callable_package import make_callable
from nasproxy.report._build import COLUMNS, Report, TruthInfo, build_report
from nasproxy.report._compare import COMPARISON_COLUMNS, Comparison, comparisons_frame, paired_comparisons
from nasproxy.report._convergence import Convergence
from nasproxy.report._curves import trend_lines
from nasproxy.report._load import StudyData, default_storages, load_csv, load_studies
from nasproxy.report._plots import plot_correlations, plot_cost, plot_preferences, plot_ranks, plot_scatter
from nasproxy.report._stats import (
    PREFERENCE_COLUMNS,
    Ceiling,
    Interval,
    ProxyStats,
    bootstrap_intervals,
    design_preferences,
    kendall,
    noise_ceiling,
    rank_statistics,
    spearman,
)
from nasproxy.report._write import comparisons_text, figures, report_json, table_text, write_report

__all__ = [
    "COLUMNS",
    "COMPARISON_COLUMNS",
    "Comparison",
    "PREFERENCE_COLUMNS",
    "Ceiling",
    "Convergence",
    "Interval",
    "ProxyStats",
    "Report",
    "StudyData",
    "TruthInfo",
    "bootstrap_intervals",
    "build_report",
    "comparisons_frame",
    "comparisons_text",
    "default_storages",
    "design_preferences",
    "figures",
    "kendall",
    "load_csv",
    "load_studies",
    "noise_ceiling",
    "paired_comparisons",
    "plot_correlations",
    "plot_cost",
    "plot_preferences",
    "plot_ranks",
    "plot_scatter",
    "rank_statistics",
    "spearman",
    "table_text",
    "trend_lines",
    "report_json",
    "write_report",
]


make_callable(__name__, "report")  # nasproxy.report(...) runs the `nasproxy report` flow in Python
