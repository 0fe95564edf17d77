"""Faults that must not lose data: a torn journal (cut inside a trial's completion, inside a study's creation),
a corrupt middle line from before the guard, a full disk in the middle of a search, a partial line that is an
append in progress, and ``--dry-run`` on a journal and on PostgreSQL. Each: one line or one warning, no
traceback, and afterwards every architecture completed exactly once."""

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest

from nasproxy._errors import NasproxyError
from nasproxy.search._journal import prepare_journal, repair_journal, write_lock
from nasproxy.search._storage import open_storage
from tests._helpers import uses_the_postgresql_server

ROOT = Path(__file__).resolve().parents[2]
TINY = 8  # architectures of the tiny space
FOUR = ("--sample", "4", "--sample-seed", "0")  # a seeded 4 of them


@pytest.fixture
def env(idx_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    environ = {
        **os.environ,
        "NASPROXY_DATA": str(idx_root),
        "NASPROXY_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return {"tmp": tmp_path, "environ": environ, "journal": tmp_path / "studies.journal"}


def _search_args(env) -> list[str]:
    args = ["search", "--space", "tiny", "--proxy", "full", "--dataset", "mnist", "--holdout", "50", "--epochs", "1"]
    return args + ["--repeats", "1", "--device", "cpu", "--backend", "aten", "--storage", str(env["journal"]), "-q"]


def _search(env, *extra, prelude=""):
    """``nasproxy search`` in a process of its own (a dead process's claims are retried, as after a crash)."""
    code = f"{prelude}\nimport sys\nfrom nasproxy.cli import main\nsys.exit(main({[*_search_args(env), *extra]!r}))"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=env["tmp"], env=env["environ"], capture_output=True, text=True
    )


def _search_here(env, monkeypatch, *extra):
    """The same command in this process, where no process dies (it saves a process start per command)."""
    return _command_here(env, monkeypatch, [*_search_args(env), *extra])


def _command_here(env, monkeypatch, args: list[str]):
    from click.testing import CliRunner

    from nasproxy.cli import main

    for name in ("NASPROXY_DATA", "NASPROXY_CACHE"):
        monkeypatch.setenv(name, env["environ"][name])
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def _no_traceback(proc):
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-2000:]


def _completions(journal: Path) -> Counter:
    storage = open_storage(str(journal))
    (name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    complete = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    return Counter(t.user_attrs["arch_id"] for t in complete)


def _lines(journal: Path) -> list[bytes]:
    return journal.read_bytes().splitlines(keepends=True)


def _cut_inside(journal: Path, line_index: int) -> bytes:
    """Cut the journal in the middle of one record, as a writer killed there leaves it; returns the torn part."""
    lines = _lines(journal)
    kept, torn = b"".join(lines[:line_index]), lines[line_index][: len(lines[line_index]) // 2]
    journal.write_bytes(kept + torn)
    return torn


@pytest.mark.parametrize("where", ["a trial's completion", "the study's creation"])
def test_a_torn_journal_is_set_aside_and_the_search_continues(env, monkeypatch, where):
    first = _search(env)  # in a process of its own: the claim the tear leaves open is a dead process's
    assert first.returncode == 0, first.stderr
    lines = _lines(env["journal"])
    if where == "the study's creation":
        index = 0
    else:  # the last record that completes a trial (op code 6: its state and value)
        index = max(i for i, line in enumerate(lines) if line.startswith(b'{"op_code":6'))
    torn = _cut_inside(env["journal"], index)
    again = _search_here(env, monkeypatch)
    assert again.returncode == 0, again.stderr
    _no_traceback(again)
    warning = [line for line in again.stderr.splitlines() if "never completed" in line]
    assert len(warning) == 1 and "set aside in" in warning[0]
    (side,) = env["tmp"].glob("studies.journal.torn-*")
    assert side.read_bytes() == torn
    assert _completions(env["journal"]) == Counter({a: 1 for a in _completions(env["journal"])})
    assert sum(_completions(env["journal"]).values()) == TINY


def test_a_corrupt_middle_line_names_the_repair_and_the_repair_keeps_every_record(env, monkeypatch):
    assert _search_here(env, monkeypatch, *FOUR).returncode == 0
    lines = _lines(env["journal"])
    # what an older nasproxy left: a torn record, then the next append on the same line
    lines[5] = lines[5][: len(lines[5]) // 2] + lines[6]
    del lines[6]
    env["journal"].write_bytes(b"".join(lines))
    before = len(lines)
    status = _command_here(env, monkeypatch, ["studies", "--storage", str(env["journal"])])
    _no_traceback(status)
    assert status.returncode == 2
    assert "line 6" in status.stderr and "studies --repair" in status.stderr
    assert len(status.stderr.strip().splitlines()) == 1
    kept, repaired, side = repair_journal(env["journal"])
    assert (kept, repaired) == (before, 1)  # the record after the tear survives; only the torn half is set aside
    assert side.read_bytes().strip() and b"op_code" in side.read_bytes()
    done = _search_here(env, monkeypatch)
    assert done.returncode == 0, done.stderr
    assert _completions(env["journal"]) == Counter({a: 1 for a in _completions(env["journal"])})
    assert sum(_completions(env["journal"]).values()) == TINY


def test_a_full_disk_is_one_line_and_the_same_command_then_finishes(env, monkeypatch):
    # the third append of the second architecture's records writes half a record, then the disk is full
    prelude = """
import errno
from optuna.storages.journal import JournalFileBackend
original, calls = JournalFileBackend.append_logs, [0]
def append(self, logs):
    calls[0] += 1
    if calls[0] == 40:
        import json
        with open(self._file_path, "ab") as f:
            f.write(json.dumps(logs[0]).encode()[:25])
        raise OSError(errno.ENOSPC, "No space left on device")
    return original(self, logs)
JournalFileBackend.append_logs = append
"""
    full = _search(env, prelude=prelude)
    _no_traceback(full)
    assert full.returncode != 0
    errors = [line for line in full.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "No space left on device" in errors[0] and str(env["journal"]) in errors[0]
    assert not env["journal"].read_bytes().endswith(b"\n")  # the torn record the full disk left
    partial = sum(_completions(env["journal"]).values())
    assert partial < TINY
    again = _search_here(env, monkeypatch)
    assert again.returncode == 0, again.stderr
    _no_traceback(again)
    assert _completions(env["journal"]) == Counter({a: 1 for a in _completions(env["journal"])})
    assert sum(_completions(env["journal"]).values()) == TINY


def test_a_partial_line_being_written_is_not_taken_for_a_tear(tmp_path):
    journal = tmp_path / "live.journal"
    record = b'{"op_code":0,"worker_id":"w","study_name":"s","directions":[2]}\n'
    journal.write_bytes(record)
    checked = threading.Event()

    def open_meanwhile():
        prepare_journal(journal)  # waits for the writer's lock, then finds the line whole
        checked.set()

    with write_lock(journal):  # a live writer, half-way through its append
        with open(journal, "ab") as f:
            f.write(record[:20])
        reader = threading.Thread(target=open_meanwhile)
        reader.start()
        time.sleep(0.5)
        assert not checked.is_set()
        with open(journal, "ab") as f:
            f.write(record[20:])
    reader.join(timeout=30)
    assert checked.is_set()
    assert journal.read_bytes() == record * 2
    assert not list(tmp_path.glob("live.journal.torn-*"))


def test_a_whole_journal_is_never_rewritten(tmp_path):
    journal = tmp_path / "whole.journal"
    journal.write_bytes(b'{"op_code":0,"worker_id":"w","study_name":"s","directions":[2]}\n')
    stat = journal.stat()
    prepare_journal(journal)
    assert journal.stat().st_mtime_ns == stat.st_mtime_ns
    assert repair_journal(journal) == (1, 0, None)
    assert journal.stat().st_mtime_ns == stat.st_mtime_ns


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dry_run_changes_no_journal(env, monkeypatch):
    dry = _search_here(env, monkeypatch, "--dry-run")
    assert dry.returncode == 0 and "8 architectures, 0 done" in dry.stderr
    assert not env["journal"].exists()
    assert _search_here(env, monkeypatch, "--sample", "3", "--sample-seed", "0").returncode == 0
    before = _digest(env["journal"])
    dry = _search_here(env, monkeypatch, "--dry-run")
    assert dry.returncode == 0 and "8 architectures, 3 done" in dry.stderr
    other = _search_here(env, monkeypatch, "--dry-run", "--epochs", "2")  # another protocol: a study the journal lacks
    assert other.returncode == 0 and "0 done" in other.stderr
    assert _digest(env["journal"]) == before


@uses_the_postgresql_server
def test_dry_run_changes_no_database(env, monkeypatch):
    url = os.environ.get("NASPROXY_TEST_POSTGRES")
    if not url:
        pytest.skip("set NASPROXY_TEST_POSTGRES to a PostgreSQL URL (the nox tests session starts a server)")
    storage = open_storage(url)
    before = sorted(optuna.get_all_study_names(storage))
    env["journal"] = url
    dry = _search_here(env, monkeypatch, "--dry-run", "--study", f"dry-{os.getpid()}-{time.time_ns()}")
    assert dry.returncode == 0, dry.stderr
    assert sorted(optuna.get_all_study_names(open_storage(url))) == before


def _longer_search(env, storage, *extra, epochs: int = 30):
    """A search whose architectures each train long enough (seconds) for a signal to land in the middle."""
    return [sys.executable, "-m", "nasproxy.cli", *_longer_search_args(storage, *extra, epochs=epochs)]


def _longer_search_args(storage, *extra, epochs: int) -> list[str]:
    args = ["search", "--space", "tiny", "--proxy", "full", "--dataset", "mnist", "--holdout", "50", "-q"]
    args += ["--epochs", str(epochs), "--repeats", "2", "--device", "cpu", "--backend", "aten", "--storage", storage]
    return [*args, *extra]


def _wait_for_completions(storage: str, at_least: int, proc, seconds: float = 240) -> int:
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
        try:
            done = sum(_completions_at(storage).values())
        except (KeyError, ValueError, OSError):
            continue
        if done >= at_least:
            return done
    return -1


def _completions_at(storage: str) -> Counter:
    store = open_storage(storage)
    names = optuna.get_all_study_names(store)
    if not names:
        raise KeyError("no study yet")
    study = optuna.load_study(study_name=names[0], storage=store)
    complete = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    return Counter(t.user_attrs["arch_id"] for t in complete)


@pytest.mark.slow
def test_sigterm_mid_trial_exits_at_once_and_the_architecture_is_retried(env, monkeypatch):
    """What Slurm, Kubernetes and `docker stop` send: the worker stops without a traceback, nothing it
    finished is lost, and the next run completes every architecture exactly once."""
    import signal

    storage = str(env["journal"])
    proc = subprocess.Popen(
        _longer_search(env, storage, *FOUR, epochs=10), cwd=env["tmp"], env=env["environ"],
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    done = _wait_for_completions(storage, 1, proc)
    assert 1 <= done < 4, "the search should have been stopped mid-run"
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)  # it stops (a hang fails here), in no asserted time
    assert "Traceback" not in out + err, err[-2000:]
    assert proc.returncode != 0
    again = _command_here(env, monkeypatch, _longer_search_args(storage, *FOUR, epochs=10))  # its rerun
    assert again.returncode == 0, again.stderr[-2000:]
    assert _completions_at(storage) == Counter({a: 1 for a in _completions_at(storage)})
    assert sum(_completions_at(storage).values()) == 4


@pytest.mark.slow
@uses_the_postgresql_server
def test_two_workers_survive_a_postgresql_restart(env):
    url = os.environ.get("NASPROXY_TEST_POSTGRES")
    if not url or os.geteuid() != 0 or not Path("/etc/postgresql").is_dir():
        pytest.skip("needs the nox session's PostgreSQL server (root, Debian's postgresql)")
    version = sorted(os.listdir("/etc/postgresql"), key=float)[-1]
    study = f"restart-{os.getpid()}-{time.time_ns()}"
    proc = subprocess.Popen(
        _longer_search(env, url, "--workers", "2", "--study", study, *FOUR, epochs=15), cwd=env["tmp"],
        env=env["environ"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def states() -> Counter:
        loaded = optuna.load_study(study_name=study, storage=open_storage(url))
        return Counter(t.state for t in loaded.get_trials())

    deadline = time.time() + 240
    while time.time() < deadline:  # until both workers train (or one has finished an architecture)
        time.sleep(0.5)
        try:
            now = states()
        except Exception:  # noqa: BLE001 - the study is being created
            continue
        if now[optuna.trial.TrialState.RUNNING] >= 2 or now[optuna.trial.TrialState.COMPLETE] >= 1:
            break
    before = states()[optuna.trial.TrialState.COMPLETE]
    subprocess.run(["pg_ctlcluster", version, "main", "restart"], check=True)
    assert proc.poll() is None and before < 4, "the restart should land while the workers train"
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in out + err
    assert _completions_at_study(url, study) == Counter({a: 1 for a in _completions_at_study(url, study)})
    assert sum(_completions_at_study(url, study).values()) == 4


def test_a_dropped_connection_in_any_call_of_optunas_cache_is_waited_out(tmp_path, monkeypatch):
    """Optuna's cache in front of a study calls private methods of the RDB storage too (the trials' reads
    above all, a sweep's most frequent query): a connection dropped in one of them is tried again like in
    the public ones, where it used to end the worker with a traceback."""
    import inspect
    import re

    import sqlalchemy.exc
    from optuna.storages import _cached_storage
    from optuna.storages._rdb import models

    from nasproxy.search._storage import _retrying_rdb_class

    called = set(re.findall(r"self\._backend\.(\w+)", inspect.getsource(_cached_storage)))
    assert "_get_trials" in called and called <= set(vars(_retrying_rdb_class()))
    storage = open_storage(f"sqlite:///{tmp_path / 'studies.db'}")
    study = optuna.create_study(study_name="s", storage=storage)
    study.tell(study.ask(), 1.0)
    find, drops = models.StudyModel.find_or_raise_by_id, [1]

    def dropped_once(study_id, session, *args, **kwargs):  # _get_trials' first query
        if drops.pop() if drops else 0:
            raise sqlalchemy.exc.OperationalError("SELECT", {}, Exception("server closed the connection"))
        return find(study_id, session, *args, **kwargs)

    loaded = optuna.load_study(study_name="s", storage=storage)
    monkeypatch.setattr(models.StudyModel, "find_or_raise_by_id", dropped_once)
    assert [t.value for t in loaded.get_trials()] == [1.0] and drops == []


def test_a_worker_joining_a_sweep_waits_out_a_refused_connection_and_the_command_does_not(tmp_path, monkeypatch):
    """A worker opens a storage the command has already opened: a refusal there is a server restarting and
    is waited out. The command's own first open says a refusal at once (a wrong URL needs no wait)."""
    import sqlalchemy.exc

    from nasproxy.search import _storage

    url, real, refusals, attempts = f"sqlite:///{tmp_path / 'studies.db'}", _storage._retrying_rdb_class(), [], []
    refused = (sqlalchemy.exc.OperationalError, "connection refused")

    def refusing(*args, **kwargs):
        attempts.append(1)
        if refusals:
            kind, message = refusals.pop()
            raise kind("connect", {}, Exception(message))
        return real(*args, **kwargs)

    monkeypatch.setattr(_storage, "_retrying_rdb_class", lambda: refusing)
    refusals.append(refused)
    with pytest.raises(NasproxyError, match="cannot open storage .*connection refused"):
        open_storage(url)
    refusals.append(refused)
    assert open_storage(url, wait_out_restart=True) is not None and refusals == []
    refusals.append((sqlalchemy.exc.ProgrammingError, "permission denied"))  # not a restart: said at once
    attempts.clear()
    with pytest.raises(NasproxyError, match="permission denied"):
        open_storage(url, wait_out_restart=True)
    assert len(attempts) == 1


def _completions_at_study(url: str, study: str) -> Counter:
    loaded = optuna.load_study(study_name=study, storage=open_storage(url))
    complete = [t for t in loaded.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    return Counter(t.user_attrs["arch_id"] for t in complete)


@pytest.mark.parametrize("command", ["condense", "evaluate", "report"])
def test_a_full_disk_while_writing_results_is_one_line_and_leaves_no_file(idx_root, tmp_path, monkeypatch, command):
    import errno

    from click.testing import CliRunner

    from nasproxy import _artifact
    from nasproxy.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NASPROXY_DATA", str(idx_root))
    monkeypatch.setenv("NASPROXY_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    condense = ["condense", "--dataset", "mnist", "--holdout", "50", "--method", "random", "--ipc", "2", "-q"]
    assert runner.invoke(main, [*condense, "--out", "p.pt"]).exit_code == 0
    if command == "report":
        for proxy in ("params", "full"):
            args = ["search", "--space", "tiny", "--proxy", proxy, "--dataset", "mnist", "--holdout", "50", "-q"]
            assert runner.invoke(main, [*args, "--epochs", "1", "--repeats", "2", "--backend", "aten"]).exit_code == 0
    before = {p for p in tmp_path.rglob("*") if p.is_file()}

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(_artifact.os, "replace", full)
    args = {
        "condense": [*condense, "--out", "q.pt"],
        "evaluate": ["evaluate", "p.pt", "--networks", "1", "--epochs", "1", "--csv", "e.csv"],
        "report": ["report", "--dataset", "mnist", "--space", "tiny", "--out", "r"],
    }[command]
    result = runner.invoke(main, args, catch_exceptions=False)
    lines = [line for line in result.output.strip().splitlines() if line.startswith("error:")]
    assert result.exit_code == 74, result.output
    assert len(lines) == 1 and "No space left on device" in lines[0] and "run the same command again" in lines[0]
    assert "Traceback" not in result.output
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert not [p for p in written if "cache" not in p.parts], written
