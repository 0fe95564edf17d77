"""Developer sessions. They run in the current environment (``pip install -e '.[dev]'`` first): a fresh
virtualenv per session would re-install torch, gigabytes, for nothing."""

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "none"


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, real-data tests included (needs the Debian dataset-fashion-mnist package)."""
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.run("ruff", "check", "nasproxy", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "nasproxy", "tests", "benchmarks", "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Speed and memory benchmarks; they write results/bench/*.csv (minutes to hours: see benchmarks/README.md)."""
    session.run("python", "-m", "benchmarks", *session.posargs)
