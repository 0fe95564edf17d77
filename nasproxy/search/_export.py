"""A study's results as a CSV (one row per architecture): what ``nasproxy search`` and ``export`` write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nasproxy.search._claims import completed_architectures

EXPORT_DIR = Path("results") / "search"


def study_rows(study) -> list[dict[str, Any]]:
    rows = []
    for arch, t in completed_architectures(study).items():
        attrs = t.user_attrs
        row = {"arch_id": arch, "value": t.value, "trial": t.number}
        for key, value in attrs.items():
            if key in ("arch_id", "heartbeat", "host", "pid"):
                continue
            row[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
        rows.append(row)
    return rows


def export_study(study, path: Path) -> Path:
    """Write one row per completed architecture (duplicates dropped) to ``path``, atomically."""
    import pandas as pd

    from nasproxy._artifact import atomic_write_text

    frame = pd.DataFrame(study_rows(study))
    if len(frame):
        frame = frame.sort_values("value", ascending=False)
    atomic_write_text(path, frame.to_csv(index=False))
    return path
