"""A user's own proxy, named on the command line as a search space is: ``path/to/file.py:ClassName``,
``package.module:ClassName`` or an entry point in the ``nasproxy.proxies`` group. A plugin subclasses
:class:`~nasproxy.search.Proxy` (or :class:`~nasproxy.search.TrainingFree`, which only needs ``measure``)
and sets ``name`` and ``version``; both, and for a file its content hash, are part of the protocol, so a
changed plugin starts a new study instead of mixing its scores with the old ones."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from importlib.metadata import entry_points
from pathlib import Path

from nasproxy._errors import NasproxyError
from nasproxy.search.proxies._base import PROXIES, Proxy


def load_proxy(ref: str) -> Proxy:
    """A registered proxy name, or a plugin (see the module's docstring)."""
    if ref in PROXIES:
        return PROXIES.get(ref)
    if ":" in ref:
        return _instantiate(_import(ref), ref)
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


def _import(ref: str):
    target, _, attr = ref.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise NasproxyError(f"proxy plugin file {path} does not exist")
        module_name = f"nasproxy_user_proxy_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
        if module_name not in sys.modules:
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module  # lets worker processes and pickling find its classes
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # noqa: BLE001 - user code
                del sys.modules[module_name]
                raise NasproxyError(f"{path} failed to import: {exc.__class__.__name__}: {exc}") from None
        module = sys.modules[module_name]
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:  # noqa: BLE001 - user code
            raise NasproxyError(f"cannot import {target!r} ({exc.__class__.__name__}: {exc})") from None
    if not hasattr(module, attr):
        raise NasproxyError(f"{target} defines no {attr!r}")
    return getattr(module, attr)


def _instantiate(obj, ref: str) -> Proxy:
    proxy = obj() if inspect.isclass(obj) and issubclass(obj, Proxy) else obj
    if not isinstance(proxy, Proxy):
        raise NasproxyError(
            f"{ref} is not a nasproxy proxy (subclass nasproxy.search.Proxy, or TrainingFree and define measure)"
        )
    if not getattr(proxy, "name", None):
        raise NasproxyError(f"{ref} sets no name (a class attribute, e.g. name = 'my-score')")
    return proxy
