"""Optuna storages: a journal file by default (no server), any RDB URL (SQLite, PostgreSQL, MySQL) on request."""

from __future__ import annotations

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


def open_storage(url: str, *, read_only: bool = False):
    """Open a storage; fail with a one-line message if it cannot be reached. ``read_only``: change nothing
    (no file, table or healed journal is made; a journal that does not exist yet gives None)."""
    import optuna

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
    try:
        return retry_on_race(
            lambda: optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url), skip_table_creation=read_only),
            url,
        )
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
