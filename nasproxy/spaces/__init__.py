"""Search-space registry: built-in spaces, YAML grid files and Python spaces (``file.py:Name``,
``package.module:Name`` or an installed ``nasproxy.spaces`` entry point)."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from nasproxy._errors import NasproxyError
from nasproxy._registry import Registry
from nasproxy.spaces._base import Candidate, GridSpace, SearchSpace
from nasproxy.spaces._families import FAMILIES, Family

SPACES: Registry = Registry("search space")  # name -> zero-argument factory of a SearchSpace


def _packaged_dir() -> Path | None:
    """The built-in spaces' folder: the top-level ``search_spaces/``, installed as ``nasproxy.search_spaces``
    (pyproject's package-dir), or the checkout's own when nasproxy runs from a source tree."""
    try:
        from importlib.resources import files

        folder = Path(str(files("nasproxy.search_spaces")))
    except (ModuleNotFoundError, TypeError):
        folder = Path(__file__).resolve().parents[2] / "search_spaces"
    return folder if folder.is_dir() else None


def space_dirs() -> list[Path]:
    """Where a space name may be a YAML file: ``./search_spaces`` first, then the built-in ones."""
    dirs = [Path.cwd() / "search_spaces", _packaged_dir()]
    dirs = [d for d in dirs if d is not None and d.is_dir()]
    return [d for i, d in enumerate(dirs) if d.resolve() not in {e.resolve() for e in dirs[:i]}]


def load_space(ref: str) -> SearchSpace:
    """A registered name, a YAML file (path, or a name in ``./search_spaces/`` or among the built-in spaces,
    e.g. ``paper720``), ``path.py:Name``, ``package.module:Name`` or an entry point in the ``nasproxy.spaces``
    group."""
    if ref in SPACES:
        return SPACES.get(ref)()
    if ref.endswith((".yaml", ".yml")):
        return _load_yaml(Path(ref))
    named = [d / f"{ref}.yaml" for d in space_dirs() if (d / f"{ref}.yaml").is_file()]
    if named:
        return _load_yaml(named[0])
    if ":" in ref:
        return _load_python(ref)
    for ep in entry_points(group="nasproxy.spaces"):
        if ep.name == ref:
            return _instantiate(ep.load(), ref)
    raise NasproxyError(
        f"unknown search space {ref!r}; use one of {', '.join(list_spaces())}, a .yaml file, or path.py:ClassName"
    )


def list_spaces() -> list[str]:
    names = set(SPACES.names())
    for folder in space_dirs():
        names |= {p.stem for p in folder.glob("*.yaml")}
    names |= {ep.name for ep in entry_points(group="nasproxy.spaces")}
    return sorted(names)


def _load_yaml(path: Path) -> GridSpace:
    import yaml

    if not path.exists():
        raise NasproxyError(f"search-space file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise NasproxyError(f"{path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("axes"), dict):
        raise NasproxyError(
            f"{path} needs a mapping 'axes: {{axis: [values, ...]}}' (and optionally 'family', 'fixed')"
        )
    extra = sorted(set(doc) - {"name", "family", "axes", "fixed", "description"})
    if extra:
        raise NasproxyError(f"{path}: unknown keys {', '.join(extra)}; allowed: name, family, axes, fixed, description")
    for axis, values in doc["axes"].items():
        if not isinstance(values, list):
            raise NasproxyError(f"{path}: axis {axis!r} must be a list of values")
    return GridSpace(
        doc.get("name", path.stem), family=doc.get("family", "convnet"), axes=doc["axes"], fixed=doc.get("fixed")
    )


def _load_python(ref: str) -> SearchSpace:
    from nasproxy._user_code import import_object

    return _instantiate(import_object(ref, kind="search-space"), ref)


def _instantiate(obj, ref: str) -> SearchSpace:
    space = obj() if isinstance(obj, type) or (callable(obj) and not isinstance(obj, SearchSpace)) else obj
    if not isinstance(space, SearchSpace):
        raise NasproxyError(f"{ref} is not a nasproxy.SearchSpace (subclass it and implement architectures and build)")
    if space.name == "unnamed":
        space.name = ref
    return space


__all__ = ["FAMILIES", "SPACES", "Candidate", "Family", "GridSpace", "SearchSpace", "list_spaces", "load_space"]
