"""A user's own proxy, named on the command line as a search space is: ``path/to/file.py:ClassName``,
``package.module:ClassName`` or an entry point in the ``nasproxy.proxies`` group. A plugin subclasses
:class:`~nasproxy.search.Proxy` (or :class:`~nasproxy.search.TrainingFree`, which only needs ``measure``)
and sets ``name`` and ``version``; both, and for a file its content hash, are part of the protocol, so a
changed plugin starts a new study instead of mixing its scores with the old ones."""

from __future__ import annotations

import hashlib
import inspect
import sys
from importlib.metadata import entry_points
from pathlib import Path

from nasproxy._errors import NasproxyError
from nasproxy._user_code import import_object
from nasproxy.search.proxies._base import PROXIES, Proxy


def load_proxy(ref: str) -> Proxy:
    """A registered proxy name, or a plugin (see the module's docstring)."""
    if ref in PROXIES:
        return PROXIES.get(ref)
    if ":" in ref:
        return _instantiate(import_object(ref, kind="proxy plugin"), ref)
    for ep in entry_points(group="nasproxy.proxies"):
        if ep.name == ref:
            try:
                loaded = ep.load()
            except Exception as exc:  # noqa: BLE001 - user code
                raise NasproxyError(f"proxy plugin {ref!r} failed to import: {exc.__class__.__name__}: {exc}") from None
            return _instantiate(loaded, ref)
    PROXIES.get(ref)  # the registry's own message: unknown proxy, and the known names
    raise AssertionError("unreachable")


def plugin_identity(proxy: Proxy) -> str | None:
    """What names a plugin in a protocol: its class, version and (for a file) content hash; None for the
    built-in proxies, so that their studies keep their names."""
    module = sys.modules.get(type(proxy).__module__)
    if module is None or type(proxy).__module__.startswith("nasproxy."):
        return None
    identity = f"{type(proxy).__qualname__}@{getattr(proxy, 'version', '0')}"
    source = getattr(module, "__file__", None)
    if source and Path(source).is_file():
        identity += "#" + hashlib.sha256(Path(source).read_bytes()).hexdigest()[:12]
    return identity


def _instantiate(obj, ref: str) -> Proxy:
    proxy = obj() if inspect.isclass(obj) and issubclass(obj, Proxy) else obj
    if not isinstance(proxy, Proxy):
        raise NasproxyError(
            f"{ref} is not a nasproxy proxy (subclass nasproxy.search.Proxy, or TrainingFree and define measure)"
        )
    if not getattr(proxy, "name", None):
        raise NasproxyError(f"{ref} sets no name (a class attribute, e.g. name = 'my-score')")
    return proxy
