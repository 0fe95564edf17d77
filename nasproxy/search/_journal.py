"""Journal files made safe: a torn last line (a writer killed or out of space mid-append) is set aside before
anything appends after it, a corrupt line in the middle is named with how to repair it, and a failed write
is one line naming the file.

Optuna's reader ignores a last line without its newline (an append still in progress, or one that never
finished), but its writer appends after it: the torn bytes and the next record become one unreadable line in
the middle of the file, and from then on nothing can read the journal."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from nasproxy._errors import NasproxyError, NasproxyWarning

# a record as Optuna writes it starts so; a line holding a torn record and the next one is split here
_RECORD_START = re.compile(rb'(?=\{"op_code")')
_checked: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns) known to be whole, in this process


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """The lock Optuna's journal writers take around every append (the same lock file)."""
    from optuna.storages.journal import JournalFileSymlinkLock

    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def prepare_journal(path: Path) -> None:
    """Before a journal is opened: set aside a torn last line (under the write lock, so that an append in
    progress is never mistaken for one), and fail with one line if a line in the middle is unreadable. A
    whole journal is only read, never rewritten."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    stat = path.stat()
    if _checked.get(str(path)) == (stat.st_size, stat.st_mtime_ns):
        return
    if not _ends_whole(path):
        with write_lock(path):
            _set_aside_torn_tail(path)
    bad = _first_unreadable_line(path)
    if bad is not None:
        raise NasproxyError(
            f"journal {path} has an unreadable record on line {bad} (a write cut off before nasproxy guarded "
            f"against it); `nasproxy studies --repair --storage {path}` keeps every readable record and sets "
            "the rest aside"
        )
    stat = path.stat()
    _checked[str(path)] = (stat.st_size, stat.st_mtime_ns)


def _ends_whole(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _side_file(path: Path, kind: str) -> Path:
    return path.with_name(f"{path.name}.{kind}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")


def _set_aside_torn_tail(path: Path) -> None:
    with open(path, "rb+") as f:
        data = f.read()
        if not data or data.endswith(b"\n"):  # another process healed it first
            return
        keep = data.rfind(b"\n") + 1
        side = _side_file(path, "torn")
        side.write_bytes(data[keep:])
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    warnings.warn(
        NasproxyWarning(
            f"journal {path} ended in a write that never completed ({len(data) - keep} bytes); set aside in "
            f"{side} and removed from the journal (its readers had ignored it)"
        ),
        stacklevel=3,
    )


def _readable(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _first_unreadable_line(path: Path) -> int | None:
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not _readable(line):
                return number
    return None


def repair_journal(path: Path) -> tuple[int, int, Path | None]:
    """Keep every readable record of ``path`` (also one that follows a torn record on the same line) and set
    the unreadable bytes aside in a side file; returns (records kept, lines repaired, the side file). The
    journal is rewritten under its write lock, through a temporary file and a rename."""
    if not path.is_file():
        raise NasproxyError(f"no journal at {path}")
    with write_lock(path):
        kept: list[bytes] = []
        aside: list[bytes] = []
        repaired = 0
        data = path.read_bytes()
        lines = data.split(b"\n")
        torn_tail = lines.pop()  # what follows the last newline: empty, or a torn last record
        if torn_tail:
            aside.append(torn_tail)
            repaired += 1
        for line in lines:
            if _readable(line):
                kept.append(line)
                continue
            repaired += 1
            for piece in _RECORD_START.split(line):
                (kept if piece and _readable(piece) else aside).append(piece)
        if not repaired:
            return len(kept), 0, None
        side = _side_file(path, "unreadable")
        side.write_bytes(b"\n".join(p for p in aside if p) + b"\n")
        tmp = path.with_name(path.name + ".repair-tmp")
        tmp.write_bytes(b"".join(line + b"\n" for line in kept))
        os.replace(tmp, path)
    _checked.pop(str(path), None)
    return len(kept), repaired, side


def journal_backend(path: Path):
    """Optuna's journal file backend, with a failed append (a full disk, a lost mount) as one error line."""
    from optuna.storages.journal import JournalFileBackend

    class _Backend(JournalFileBackend):
        def append_logs(self, logs):
            try:
                super().append_logs(logs)
            except OSError as exc:
                raise NasproxyError(
                    f"cannot write the journal {path} ({exc.strerror or exc}); finished architectures are kept: "
                    "free space (or fix the mount) and run the same command again"
                ) from None

    return _Backend(str(path))
