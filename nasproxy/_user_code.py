"""Importing what a user names on the command line: ``path/to/file.py:Name`` or ``package.module:Name``
(search spaces and proxy plugins), each failure one line."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

from nasproxy._errors import NasproxyError


def import_object(ref: str, *, kind: str):
    """The object ``Name`` of ``ref``; ``kind`` names the file in messages (e.g. "search-space")."""
    target, _, attr = ref.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise NasproxyError(f"{kind} file {path} does not exist")
        # a name stable across processes, so that worker processes and pickling find the same classes
        module_name = f"nasproxy_user_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]}"
        if module_name not in sys.modules:
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
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
