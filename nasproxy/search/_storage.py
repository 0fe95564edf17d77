"""Optuna storages: a journal file by default (no server), any RDB URL (SQLite, PostgreSQL, MySQL) on request."""

from __future__ import annotations

from pathlib import Path

from nasproxy._errors import NasproxyError

DEFAULT_DIR = Path("results") / "studies"


def storage_url_for(storage: str | None, study_name: str) -> str:
    """What a worker process needs to open the same storage (journal files are given by path)."""
    if storage:
        return storage
    return str(DEFAULT_DIR / f"{study_name}.journal")


def open_storage(url: str):
    """Open a storage; fail with a one-line message if it cannot be reached."""
    import optuna

    if "://" not in url:  # a journal file
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        from nasproxy._artifact import check_writable

        path = check_writable(url, what="storage journal")
        return JournalStorage(JournalFileBackend(str(path)))
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
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
