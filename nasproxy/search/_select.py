"""Which architectures a search is restricted to: a listed file, or the top of earlier searches' exports."""

from __future__ import annotations

from pathlib import Path

from nasproxy._configs import DEFAULT_DATASET
from nasproxy._errors import NasproxyError, setting
from nasproxy.search._export import EXPORT_DIR


def read_arch_ids(path: str | Path) -> tuple[str, ...]:
    """Architecture ids listed in a text file, one per line (``#`` starts a comment)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise NasproxyError(f"cannot read the architecture list {path} ({exc.__class__.__name__})") from None
    ids = tuple(i for i in (line.split("#", 1)[0].strip() for line in lines) if i)
    if not ids:
        raise NasproxyError(f"{path} lists no architecture ids (one per line)")
    return ids


def chosen_architectures(
    *,
    space: str,
    dataset: str | None,
    archs_file: str | Path | None = None,
    only_top: int | None = None,
    sources: str | None = None,
    sample: int | None = None,
) -> tuple[str, ...] | None:
    """The architectures a search is restricted to: those listed in ``archs_file``, or the union of the
    top ``only_top`` of the searches named in ``sources`` (comma-separated); None: no restriction."""
    if archs_file is not None:
        if only_top is not None or sample is not None:
            raise NasproxyError(f"pass one of {setting('archs')}, {setting('only_top')} and {setting('sample')}")
        return read_arch_ids(archs_file)
    if only_top is None:
        return None
    if not sources:
        raise NasproxyError(
            f"{setting('only_top')} needs {setting('from')} with the searches to take the top architectures of"
        )
    space_name = Path(space).stem if space.endswith((".yaml", ".yml")) else space
    chosen = top_architectures(sources.split(","), only_top, dataset=dataset or DEFAULT_DATASET, space=space_name)
    return tuple(chosen)


def top_architectures(sources: list[str], k: int, *, dataset: str, space: str) -> list[str]:
    """The union of the top-``k`` architectures of earlier searches, in source order.

    A source is a CSV written by ``nasproxy search``/``export``, or a proxy name whose newest export for
    this dataset and space is found in ``results/search``."""
    import pandas as pd

    chosen: list[str] = []
    for source in sources:
        path = Path(source)
        if not path.suffix == ".csv":
            matches = sorted(EXPORT_DIR.glob(f"{dataset}-{space}-{source}-*.csv"), key=lambda p: p.stat().st_mtime)
            if not matches:
                raise NasproxyError(
                    f"no finished search with proxy {source!r} on {dataset}/{space} in {EXPORT_DIR}; "
                    f"search space {space} with {setting('proxy')} {source} first, or pass its CSV"
                )
            path = matches[-1]
        if not path.exists():
            raise NasproxyError(f"{path} does not exist")
        frame = pd.read_csv(path)
        if "arch_id" not in frame or "value" not in frame:
            raise NasproxyError(f"{path} is not a nasproxy search export (needs arch_id and value columns)")
        chosen += frame.sort_values("value", ascending=False)["arch_id"].head(k).tolist()
    return list(dict.fromkeys(chosen))
