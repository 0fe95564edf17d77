"""Exceptions raised by nasproxy. The CLI turns them into one-line messages and exit codes."""


class NasproxyError(Exception):
    """A problem the user can fix; the message says what is wrong and how to fix it."""


class UnknownNameError(NasproxyError, KeyError):
    """A registry lookup with a name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DataNotFoundError(NasproxyError, FileNotFoundError):
    """A dataset's files are not on this machine."""


class ArtifactError(NasproxyError, ValueError):
    """A proxy file is missing, corrupt, or not a nasproxy proxy."""


class IncompatibleError(NasproxyError, ValueError):
    """Two things that must match do not (image shape, dataset, hold-out)."""
