"""Optuna storages: a journal file by default (no server), any RDB URL (SQLite, PostgreSQL, MySQL) on request."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from nasproxy._errors import NasproxyError

T = TypeVar("T")
# Workers started together against an empty database all try to create Optuna's tables (and then the same
# study): all but one fail with a unique-key or "already exists" error. That is a race, not a bad URL: try
# again after a short random wait, by when the winner has created them.
RACE_ATTEMPTS = 8
_RACE_SIGNS = ("duplicate key value", "already exists", "uniqueviolation", "duplicateobject", "duplicatetable")

DEFAULT_DIR = Path("results") / "studies"


def storage_url_for(storage: str | None, study_name: str) -> str:
    """What a worker process needs to open the same storage (journal files are given by path)."""
    if storage:
        return storage
    return str(DEFAULT_DIR / f"{study_name}.journal")


def open_storage(url: str, *, read_only: bool = False, wait_out_restart: bool = False):
    """Open a storage; fail with a one-line message if it cannot be reached. ``read_only``: change nothing
    (no file, table or healed journal is made; a journal that does not exist yet gives None).
    ``wait_out_restart``: a database server that refuses or drops the connection is tried again for up to
    TRANSIENT_WAIT_SECONDS, where it is known to exist (a worker joining a sweep the command has started);
    the command's own first open fails at once, so that a wrong URL is said without a wait."""

    if "://" not in url and read_only:
        if not Path(url).is_file():
            return None
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url))  # opened for appends, but nothing is written
    if "://" not in url:  # a journal file
        from optuna.storages.journal import JournalStorage

        from nasproxy._artifact import check_writable
        from nasproxy.search._journal import journal_backend, prepare_journal

        path = check_writable(url, what="storage journal")
        prepare_journal(path)
        return JournalStorage(journal_backend(path))

    def create():
        return _retrying_rdb_class()(url, engine_kwargs=_engine_kwargs(url), skip_table_creation=read_only)

    def connect():
        return retry_on_race(create, url)

    try:
        return wait_out_restarts(connect) if wait_out_restart else connect()
    except NasproxyError:
        raise
    except ModuleNotFoundError as exc:
        raise NasproxyError(
            f"storage {_redact(url)} needs the Python package {exc.name!r}; "
            "pip install 'nasproxy[postgres]' (or the driver for your database)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises many kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise NasproxyError(
            f"cannot open storage {_redact(url)} ({first[:200]}); check the URL, that the server "
            "is running and that the database exists"
        ) from None


def stored_studies(storages: Sequence[str]) -> Iterator[tuple[str, object, str]]:
    """``(url, storage, study name)`` for every study in ``storages``, by name; a name an earlier storage
    held is skipped. Storages are only read."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seen: set[str] = set()
    for url in storages:
        if "://" not in url and not Path(url).is_file():
            raise NasproxyError(f"no storage at {url}; pass a journal file written by `nasproxy search` or a URL")
        storage = open_storage(url)
        for name in sorted(optuna.get_all_study_names(storage)):
            if name not in seen:
                seen.add(name)
                yield url, storage, name


# a database server restarting or a connection dropped: the next query, on a fresh connection, succeeds
_TRANSIENT_SIGNS = ("operationalerror", "interfaceerror", "connection", "server closed", "terminating")


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it: Optuna wraps the driver's error) is a dropped connection."""
    seen = 0
    while exc is not None and seen < 8:
        text = f"{type(exc).__name__} {exc}".lower()
        if any(sign in text for sign in _TRANSIENT_SIGNS):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


TRANSIENT_WAIT_SECONDS = 60.0  # how long a storage call waits out a server that is away (a restart)


def wait_out_restarts(fn: Callable[[], T]) -> T:
    """``fn()``, tried again (after waits growing from 0.2 to 2 s) while it fails because the database server
    is briefly away, for up to TRANSIENT_WAIT_SECONDS."""
    deadline = time.monotonic() + TRANSIENT_WAIT_SECONDS
    pause = 0.2
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(2.0, pause * 2)


@functools.cache
def _retrying_rdb_class() -> type:
    """Optuna's RDBStorage whose every call is tried again, on a fresh connection, while the server is briefly
    away (a restart, a dropped connection), for up to TRANSIENT_WAIT_SECONDS; workers then ride out a database
    restart instead of failing mid-sweep."""
    import optuna

    base = optuna.storages.RDBStorage

    def retrying(name: str):
        method = getattr(base, name)

        @functools.wraps(method)
        def call(self, *args, **kwargs):
            return wait_out_restarts(lambda: method(self, *args, **kwargs))

        return call

    from optuna.storages._heartbeat import BaseHeartbeat

    public = {n for kind in (optuna.storages.BaseStorage, BaseHeartbeat) for n in dir(kind) if not n.startswith("_")}
    names = [n for n in sorted(public) if callable(getattr(base, n))] + [n for n in CACHE_CALLS if hasattr(base, n)]
    return type("RetryingRDBStorage", (base,), {n: retrying(n) for n in names})


# The cache Optuna puts in front of every study's RDB storage calls these private methods directly; the
# trials' reads among them are a sweep's most frequent queries, so a restart lands in them most often.
CACHE_CALLS = ("_create_new_trial", "_get_best_trial_id", "_get_stale_trial_ids", "_get_trials", "_set_trial_param")


def is_race(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(sign in text for sign in _RACE_SIGNS)


def retry_on_race(fn: Callable[[], T], url: str, *, attempts: int = RACE_ATTEMPTS) -> T:
    """``fn()``, tried again while it fails because other processes are creating the same tables or study."""
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if not is_race(exc):
                raise
            if attempt == attempts - 1:
                raise NasproxyError(
                    f"storage {_redact(url)} was still being set up by other processes after {attempts} tries; "
                    "re-run the same command"
                ) from None
            time.sleep(random.uniform(0.1, 0.5) * (attempt + 1))
    raise AssertionError("unreachable")


def _engine_kwargs(url: str) -> dict:
    if url.startswith("postgresql"):
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    return {}


def _redact(url: str) -> str:
    """Hide a password in messages."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url
