"""Developer sessions. They run in the current environment (``pip install -e '.[dev]'`` first): a fresh
virtualenv per session would re-install torch, gigabytes, for nothing."""

import os
import shutil
import subprocess

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "none"
LINTED = [
    "nasproxy",
    "tests",
    "benchmarks",
    "search_spaces",
    "examples",
    "results/make_figures.py",
    "results/fashion-mnist",
    "noxfile.py",
]
# a pytest-xdist worker per core, each with its share of the threads (tests/conftest.py); the tests on the
# PostgreSQL server go to one worker together (their xdist_group)
PARALLEL = ["-n", "auto", "--dist", "loadgroup"]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite, real-data tests included (needs Debian's dataset-fashion-mnist). As root with Debian's
    postgresql installed, it starts a local server for the multi-worker storage test and stops it after."""
    env, started = {}, False
    if "NASPROXY_TEST_POSTGRES" not in os.environ and shutil.which("pg_ctlcluster") and os.geteuid() == 0:
        url = subprocess.run(["bash", "tests/postgres.sh", "up"], capture_output=True, text=True, check=True)
        env["NASPROXY_TEST_POSTGRES"] = url.stdout.strip().splitlines()[-1]
        started = True
    try:
        session.run("python", "-m", "pytest", "-q", *PARALLEL, *session.posargs, env=env)
    finally:
        if started:
            subprocess.run(["bash", "tests/postgres.sh", "down"], check=False, capture_output=True)


@nox.session
def quick(session: nox.Session) -> None:
    """The fast subset, while working: no process starts, multi-worker searches, cold compiles or real-data
    runs (the suite's ``slow`` marker); CI runs them all."""
    session.run("python", "-m", "pytest", "-q", "-m", "not slow", *PARALLEL, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)


@nox.session
def bench(session: nox.Session) -> None:
    """Speed and memory benchmarks; they write results/bench/*.csv (see benchmarks/README.md)."""
    session.run("python", "-m", "benchmarks", *session.posargs)
