"""The ``nasproxy`` command. It only parses options and calls the library; library errors become one-line
messages and exit code 2. Imports of torch and friends happen inside the commands so ``--help`` is instant.
One file per command (or family of commands); each attaches itself to ``main``."""

from nasproxy.cli import condense, evaluate, inspect, report, search, studies  # noqa: F401 - they attach to main
from nasproxy.cli._common import main

__all__ = ["main"]
