"""``nasproxy.search`` and ``nasproxy.report`` are packages and also the Python counterparts of their commands:
calling the package calls the function of the same name in :mod:`nasproxy._api`."""

from __future__ import annotations

import sys
import types


def make_callable(package: str, function: str) -> None:
    """Calling the (already imported) ``package`` calls ``nasproxy._api.<function>(**options)``."""

    class CallablePackage(types.ModuleType):
        def __call__(self, **options):
            from nasproxy import _api

            return getattr(_api, function)(**options)

    sys.modules[package].__class__ = CallablePackage
