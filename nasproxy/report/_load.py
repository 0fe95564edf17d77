"""Read finished searches (Optuna studies, or CSVs that ``nasproxy search``/``export`` wrote) into plain
tables: one row per architecture, with the per-repeat accuracies where the study trained networks."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nasproxy._errors import NasproxyError

LIST_ATTRS = ("val_accs", "test_accs", "val_accs_half")
# a ground truth scored at several epochs within one run: {epochs: [accuracy of each network]}
SERIES_ATTRS = ("val_accs_at", "test_accs_at")


@dataclass(frozen=True)
class StudyData:
    """One finished search: its proxy kind, its protocol and its trials (columns ``architecture``, ``score``,
    ``seconds``, ``device``, ``train_images``, ``test_mean``, ``spec`` (the architecture's design choices, a
    dict), the lists of :data:`LIST_ATTRS` and the dicts of :data:`SERIES_ATTRS`)."""

    name: str
    proxy: str  # the proxy kind it was scored with (ours, random, full, synflow, ...)
    protocol: dict[str, Any]
    trials: pd.DataFrame
    source: str  # storage URL, journal path or CSV path
    space: str | None = None
    proxy_file: dict[str, Any] | None = None  # provenance of the condensed set (method, ipc, wall_seconds, ...)

    @property
    def training_free(self) -> bool:
        return int(self.protocol.get("epochs", 0) or 0) == 0

    @property
    def dataset(self) -> str | None:
        return self.protocol.get("dataset")


def default_storages() -> list[str]:
    """Every journal file that ``nasproxy search`` writes by default."""
    from nasproxy.search._storage import DEFAULT_DIR

    return [str(p) for p in sorted(DEFAULT_DIR.glob("*.journal"))]


def load_studies(
    storages: Sequence[str],
    *,
    dataset: str | None = None,
    space: str | None = None,
    names: Iterable[str] = (),
) -> list[StudyData]:
    """Every study in ``storages`` of this dataset and space (or exactly the ones in ``names``)."""
    import optuna

    from nasproxy.search._storage import stored_studies

    wanted = list(dict.fromkeys(names))
    found: dict[str, StudyData] = {}
    for url, storage, name in stored_studies(storages):
        if wanted and name not in wanted:
            continue
        data = _from_study(optuna.load_study(study_name=name, storage=storage), url)
        if wanted or ((dataset is None or data.dataset == dataset) and (space is None or data.space == space)):
            found[name] = data
    unknown = [n for n in wanted if n not in found]
    if unknown:
        raise NasproxyError(f"no study {unknown[0]!r} in {', '.join(storages) or 'the default storage'}")
    return list(found.values())


def _from_study(study, source: str) -> StudyData:
    from nasproxy.search import completed_architectures

    attrs = study.user_attrs
    protocol = dict(attrs.get("protocol", {}))
    rows = []
    for arch, trial in completed_architectures(study).items():
        row = {"architecture": arch, "score": trial.value}
        for key in ("seconds", "train_images", "test_mean", "spec", *LIST_ATTRS, *SERIES_ATTRS):
            row[key] = trial.user_attrs.get(key)
        row["device"] = trial.user_attrs.get("machine", trial.user_attrs.get("device"))
        rows.append(row)
    return StudyData(
        name=study.study_name,
        proxy=str(protocol.get("proxy", "?")),
        protocol=protocol,
        trials=_frame(rows),
        source=source,
        space=(attrs.get("space") or {}).get("name"),
        proxy_file=attrs.get("proxy_file"),
    )


def load_csv(path: str | Path) -> StudyData:
    """A CSV written by ``nasproxy search``/``export`` (one row per architecture)."""
    path = Path(path)
    if not path.is_file():
        raise NasproxyError(f"{path} does not exist; pass a CSV written by `nasproxy search` or `nasproxy export`")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise NasproxyError(f"{path} is not a readable CSV ({exc.__class__.__name__})") from None
    need = {"arch_id", "value", "proxy"}
    if not need <= set(frame.columns):
        raise NasproxyError(f"{path} is not a nasproxy search export (it needs the columns {', '.join(sorted(need))})")
    if frame["proxy"].nunique() != 1:
        raise NasproxyError(f"{path} mixes several proxies; export one study per file")
    rows = []
    for rec in frame.to_dict("records"):
        row = {"architecture": rec["arch_id"], "score": rec["value"]}
        for key in ("seconds", "train_images", "test_mean"):
            row[key] = _clean(rec.get(key))
        row["device"] = _clean(rec.get("machine")) or _clean(rec.get("device"))
        for key in ("spec", *LIST_ATTRS, *SERIES_ATTRS):
            row[key] = json.loads(rec[key]) if isinstance(rec.get(key), str) else None
        rows.append(row)
    proxy = str(frame["proxy"].iloc[0])
    protocol = {"proxy": proxy}
    if "protocol_hash" in frame:
        protocol["hash"] = str(frame["protocol_hash"].iloc[0])
    return StudyData(name=path.stem, proxy=proxy, protocol=protocol, trials=_frame(rows), source=str(path))


def _frame(rows: list[dict]) -> pd.DataFrame:
    columns = ["architecture", "score", "seconds", "device", "train_images", "test_mean", "spec", *LIST_ATTRS]
    columns += SERIES_ATTRS
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("architecture", kind="mergesort").reset_index(drop=True)


def _clean(value):
    return None if isinstance(value, float) and math.isnan(value) else value
