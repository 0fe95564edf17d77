"""Exceptions raised by nasproxy. The CLI turns them into one-line messages and exit codes.

A message names a setting with :func:`setting` (``setting("proxy_file")``): a Python caller reads
``proxy_file``, a command-line user ``--proxy-file`` (:meth:`NasproxyError.for_cli`), so the library never
names a command-line flag of its own accord.
"""

import re

_MARK = "\x1f"  # unit separator: never in a user's text
_SETTING = re.compile(f"{_MARK}([a-z_]+){_MARK}")


def setting(name: str) -> str:
    """A setting's name inside an error message, rendered for whoever reads it."""
    return f"{_MARK}{name}{_MARK}"


# the Python API's name of a repeatable option is the plural of its flag's (storages=[...], --storage A --storage B)
_FLAG_OF = {"storages": "storage", "studies": "study", "csvs": "csv"}


def cli_flag(name: str) -> str:
    return "--" + _FLAG_OF.get(name, name).replace("_", "-")


class NasproxyError(Exception):
    """A problem the user can fix; the message says what is wrong and how to fix it."""

    def __str__(self) -> str:
        return _SETTING.sub(lambda m: m.group(1), super().__str__())

    def for_cli(self) -> str:
        return _SETTING.sub(lambda m: cli_flag(m.group(1)), super().__str__())


class UnknownNameError(NasproxyError, KeyError):
    """A registry lookup with a name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return _SETTING.sub(lambda m: m.group(1), str(self.args[0]))

    def for_cli(self) -> str:
        return _SETTING.sub(lambda m: cli_flag(m.group(1)), str(self.args[0]))


class DataNotFoundError(NasproxyError, FileNotFoundError):
    """A dataset's files are not on this machine."""


class ArtifactError(NasproxyError, ValueError):
    """A condensed set is missing, corrupt, or not one nasproxy wrote."""


class IncompatibleError(NasproxyError, ValueError):
    """Two things that must match do not (image shape, dataset, hold-out)."""


class BudgetSpent(NasproxyError):
    """A time budget ran out before the work was done; what was done is saved, and the same command
    continues it."""


class NasproxyWarning(UserWarning):
    """Something the user may want to change, rendered like :class:`NasproxyError`."""

    def __str__(self) -> str:
        return _SETTING.sub(lambda m: m.group(1), super().__str__())

    def for_cli(self) -> str:
        return _SETTING.sub(lambda m: cli_flag(m.group(1)), super().__str__())
