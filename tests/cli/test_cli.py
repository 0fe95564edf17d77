import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nasproxy import CondensedSet, register_model
from nasproxy.cli import main
from nasproxy.models import MODELS

EVAL = ["--networks", "2", "--epochs", "3", "--model", "convnet-w8-d1-instance-relu-avg", "-q"]


@pytest.fixture
def run(idx_root, monkeypatch, tmp_path):
    monkeypatch.setenv("NASPROXY_DATA", str(idx_root))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


def _one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for f in fragments:
        assert f in lines[0]


def test_condense_evaluate_show_info(run, tmp_path):
    out = tmp_path / "p.pt"
    # --condenser, and elsewhere in this file its earlier name --method, which existing scripts use
    r = run("condense", "--dataset", "mnist", "--holdout", 50, "--condenser", "random", "--ipc", 2, "--out", out, "-q")
    assert r.exit_code == 0, r.output
    condensed = CondensedSet.load(out)
    assert condensed.images.shape == (20, 1, 28, 28) and condensed.meta["holdout"] == 50
    r = run("evaluate", out, *EVAL, "--json", "--csv", tmp_path / "evals.csv")
    assert r.exit_code == 0, r.output
    row = json.loads(r.output.strip().splitlines()[-1])
    assert len(row["accuracies"]) == 2 and 0 <= row["mean"] <= 1 and row["method"] == "random"
    assert row["device"].split()[0] == ("cuda" if torch.cuda.is_available() else "cpu")  # --device auto
    run("evaluate", out, *EVAL, "--csv", tmp_path / "evals.csv")
    assert len((tmp_path / "evals.csv").read_text().strip().splitlines()) == 3  # header + two appended rows
    r = run("show", out, "--out", tmp_path / "grid.png")
    assert r.exit_code == 0 and (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    r = run("info", out)
    assert json.loads(r.output)["method"] == "random"


def test_dc_condense_through_the_cli(run, tmp_path):
    out = tmp_path / "dc.pt"
    r = run(
        "condense",
        "--dataset",
        "mnist",
        "--holdout",
        50,
        "--ipc",
        1,
        "--iterations",
        2,
        "--real-batch",
        4,
        "--model",
        "convnet-w8-d2-instance-relu-avg",
        "--out",
        out,
        "-q",
    )
    assert r.exit_code == 0, r.output
    meta = CondensedSet.load(out).meta
    assert meta["method"] == "dc" and meta["iterations_done"] == 2 and meta["hyperparameters"]["real_batch"] == 4
    assert not (tmp_path / "dc.pt.ckpt").exists()
    _one_line_error(run("condense", "--dataset", "mnist", "--holdout", 50, "--ipc", 1, "--out", out), "--force")


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["condense", "--dataset", "imagenet", "--out", "x.pt"], ["unknown dataset 'imagenet'", "fashion-mnist"]),
        (["condense", "--dataset", "mnist", "--method", "magic", "--out", "x.pt"], ["unknown condenser"]),
        (["condense", "--dataset", "mnist", "--ipc", "0", "--out", "x.pt"], ["--ipc"]),
        (["condense", "--dataset", "cifar10", "--out", "x.pt"], ["not found", "--download"]),
        (["condense", "--dataset", "mnist", "--model", "convnet-w9", "--out", "x.pt"], ["not a ConvNet id"]),
        (
            ["condense", "--dataset", "mnist", "--method", "random", "--iterations", "3", "--out", "x.pt"],
            ["does not take iterations"],
        ),
        (["condense", "--dataset", "mnist", "--device", "cuda", "--out", "x.pt"], ["no CUDA"]),
    ],
)
def test_bad_condense_input_is_one_line_and_writes_nothing(run, tmp_path, args, fragments):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    _one_line_error(run(*args), *fragments)
    assert not (tmp_path / "x.pt").exists()


def test_bad_evaluate_input(run, tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    _one_line_error(run("evaluate", tmp_path / "junk.pt"), "not a readable nasproxy condensed set")
    _one_line_error(run("evaluate", tmp_path / "missing.pt"), "does not exist")
    good = tmp_path / "p.pt"
    run("condense", "--dataset", "mnist", "--holdout", 50, "--method", "random", "--ipc", 1, "--out", good, "-q")
    _one_line_error(run("evaluate", good, "--model", "transformer", "-q"), "unknown model 'transformer'")

    if "rgb-only" not in MODELS:

        @register_model("rgb-only")
        def rgb_only(*, channels, num_classes, image_size):
            return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(num_classes))

    _one_line_error(run("evaluate", good, "--model", "rgb-only", "-q"), "cannot take images of shape [1, 28, 28]")


def test_interrupted_run_must_be_resumed_or_restarted_explicitly(run, tmp_path):
    (tmp_path / "p.pt.ckpt").write_bytes(b"x")
    _one_line_error(run("condense", "--dataset", "mnist", "--out", tmp_path / "p.pt"), "--resume", "--restart")


def test_help_lists_commands(run):
    r = run("--help")
    assert r.exit_code == 0 and "condense" in r.output and "evaluate" in r.output


@pytest.mark.parametrize("command", ["condense", "evaluate", "show", "info"])
def test_commands_that_take_a_condensed_set_call_it_so(run, command):
    """One name per concept: the file a condenser writes is a condensed set; a proxy is a way `search` scores
    architectures. Only the search's own option names (``--proxy-file``) and the package's name say proxy."""
    import re

    text = " ".join(run(command, "--help").output.split())  # click wraps lines
    assert "condensed set" in text.lower()
    assert not re.findall(r"(?<![\w-])prox(?:y|ies)(?!-file)", text, flags=re.I), text


def test_spaces_and_search_through_the_cli(run, tmp_path):
    r = run("spaces", "show", "paper720", "--json")
    info = json.loads(r.output)
    assert info["size"] == 720 and info["axes"]["depth"] == [1, 2, 3, 4]
    assert "tiny\t8 architectures" in run("spaces", "list").output
    out = tmp_path / "p.pt"
    run("condense", "--dataset", "mnist", "--holdout", 50, "--method", "random", "--ipc", 1, "--out", out, "-q")
    args = ["search", "--space", "tiny", "--proxy", "random", "--proxy-file", out, "--epochs", 1, "--repeats", 1]
    r = run(*args, "--dry-run")
    assert r.exit_code == 0 and "8 architectures, 0 done, 8 to run; estimated" in r.output
    r = run(*args, "-q")
    assert r.exit_code == 0, r.output
    exported = list((tmp_path / "results" / "search").glob("mnist-tiny-random-*.csv"))
    assert len(exported) == 1 and len(exported[0].read_text().strip().splitlines()) == 9
    study = exported[0].stem
    r = run("export", "--study", study, "--out", tmp_path / "again.csv")
    assert r.exit_code == 0 and (tmp_path / "again.csv").read_text() == exported[0].read_text()
    _one_line_error(run("search", "--space", "tiny", "--proxy", "ours", "--dataset", "mnist"), "needs --proxy-file")
    _one_line_error(
        run("search", "--space", "nope", "--proxy", "params", "--dataset", "mnist", "--holdout", 50),
        "unknown search space",
    )
    _one_line_error(run("export", "--study", "missing"), "no storage")


def test_search_takes_a_file_of_architecture_ids(run, tmp_path):
    out = tmp_path / "p.pt"
    run("condense", "--dataset", "mnist", "--holdout", 50, "--method", "random", "--ipc", 1, "--out", out, "-q")
    archs = tmp_path / "archs.txt"
    archs.write_text("# two of tiny\nconvnet-w16-d1-none-relu-avg\n\nconvnet-w32-d2-instance-relu-avg  # deep\n")
    args = ["search", "--space", "tiny", "--proxy", "random", "--proxy-file", out, "--epochs", 1, "--repeats", 1]
    r = run(*args, "--archs", archs, "--dry-run")
    assert r.exit_code == 0 and "2 architectures, 0 done, 2 to run" in r.output, r.output
    archs.write_text("convnet-w99-d1-none-relu-avg\n")
    _one_line_error(run(*args, "--archs", archs), "not in space")
    archs.write_text("# nothing\n")
    _one_line_error(run(*args, "--archs", archs), "lists no architecture ids")
    _one_line_error(run(*args, "--archs", archs, "--sample", 3), "one of --archs")


@pytest.mark.slow
def test_ctrl_c_keeps_finished_iterations_and_resume_finishes(idx_root, tmp_path, run):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "dc.pt"
    cmd = [
        sys.executable,
        "-m",
        "nasproxy.cli",
        "condense",
        "--dataset",
        "mnist",
        "--holdout",
        "50",
        "--ipc",
        "1",
        "--iterations",
        "120",
        "--real-batch",
        "4",
        "--model",
        "convnet-w8-d1-instance-relu-avg",
        "--out",
        str(out),
        "-q",
    ]
    env = {**os.environ, "NASPROXY_DATA": str(idx_root)}
    # a shell's background job inherits SIGINT ignored (and Python keeps it so): restore the default, as a
    # terminal's Ctrl-C would find it
    restore_sigint = partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=restore_sigint)
    ckpt = tmp_path / "dc.pt.ckpt"
    deadline = time.time() + 120
    while time.time() < deadline and not ckpt.exists():
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err and "--resume" in err
    done = torch.load(ckpt, weights_only=True)["iteration"]
    assert 1 <= done < 120 and not out.exists()
    finished = run(*cmd[3:], "--resume")  # here: only the interrupted run needs a process of its own
    assert finished.exit_code == 0, finished.output
    assert (
        CondensedSet.load(out).meta["iterations_done"] == 120
        and len(CondensedSet.load(out).meta["loss_history"]) == 120
    )


def test_list_says_what_each_entry_is_and_only_lists_what_exists(run):
    condensers = run("list", "condensers").output.splitlines()
    assert condensers[0].startswith("dc ") and "Gradient matching" in condensers[0]
    assert run("list", "methods").output.splitlines() == condensers  # the earlier name still works
    from nasproxy.condensers import CONDENSERS

    proxies = {line.split()[0] for line in run("list", "proxies").output.splitlines()}
    training_free = {"synflow", "naswot", "snip", "grad-norm", "params"}
    assert proxies == {"ours", "early-stopping", "full", *CONDENSERS.names(), *training_free}
    assert "see `nasproxy list condensers`" in " ".join(run("condense", "--help").output.split())


@pytest.mark.parametrize("where", ["proc", "under-a-file"])
def test_unwritable_outputs_fail_before_any_work_in_one_line(run, tmp_path, where):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    base = Path("/proc/nasproxy-test") if where == "proc" else a_file
    out = tmp_path / "p.pt"
    run("condense", "--dataset", "mnist", "--holdout", 50, "--method", "random", "--ipc", 1, "--out", out, "-q")
    _one_line_error(
        run(
            "condense", "--dataset", "mnist", "--holdout", 50, "--method", "random", "--ipc", 1, "--out", base / "x.pt"
        ),
        "cannot write --out",
    )
    # evaluate checks its CSV before training, so no result is trained and then lost
    _one_line_error(run("evaluate", out, *EVAL, "--csv", base / "e.csv"), "cannot write --csv")
    args = ["search", "--space", "tiny", "--proxy", "random", "--proxy-file", out, "--epochs", 1, "--repeats", 1]
    _one_line_error(run(*args, "--storage", base / "s.journal"), "cannot write storage journal")
    _one_line_error(run("report", "--space", "tiny", "--out", base / "report"), "cannot write --out")
    assert a_file.read_text() == "x" and not list(tmp_path.glob("**/*.tmp"))
    assert not (tmp_path / "results").exists()  # no study was created anywhere


def test_report_reads_its_architecture_list_before_any_study(run, tmp_path):
    # a wrong --archs path names itself, not the studies it would have filtered
    store = tmp_path / "none.journal"
    args = ["report", "--space", "tiny", "--storage", store, "--out", tmp_path / "r"]
    _one_line_error(run(*args, "--archs", tmp_path / "missing.txt"), "cannot read the architecture list")
    (tmp_path / "empty.txt").write_text("# nothing listed\n")
    _one_line_error(run(*args, "--archs", tmp_path / "empty.txt"), "lists no architecture ids")
    assert not store.exists() and not list(tmp_path.glob("r/*"))  # no study opened, no report written


def test_a_plain_pickle_for_a_condensed_set_gets_nasproxys_one_line_only(run, tmp_path):
    import pickle

    (tmp_path / "plain.pt").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    _one_line_error(run("info", tmp_path / "plain.pt"), "is not a readable nasproxy condensed set")


@pytest.mark.slow
def test_a_compute_command_prints_nasproxys_lines_only(idx_root, tmp_path):
    """torch's extension module used to log a CUDA_HOME guess on every compute command of a CPU machine."""
    env = {**os.environ, "NASPROXY_DATA": str(idx_root)}
    cmd = [sys.executable, "-m", "nasproxy.cli", "condense", "--dataset", "mnist", "--holdout", "50"]
    cmd += ["--method", "random", "--ipc", "1", "--out", str(tmp_path / "p.pt"), "--device", "cpu"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert all(line.startswith(("building nasproxy's C++ kernels", "warning: ")) for line in lines), lines
    assert "CUDA_HOME" not in done.stderr and done.stdout.startswith("wrote ")
