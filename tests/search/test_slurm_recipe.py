"""The Slurm recipe (examples/slurm/search.sbatch) as Slurm would run it: array tasks at once (two here), each
a worker of one search through the shared storage; every architecture is completed exactly once."""

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest

from nasproxy.search._storage import open_storage

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "slurm" / "search.sbatch"


@pytest.mark.slow
def test_array_tasks_share_one_sweep(idx_root, tmp_path):
    storage = tmp_path / "shared.journal"
    bin_dir = tmp_path / "bin"  # `nasproxy` as installed, from this checkout
    bin_dir.mkdir()
    (bin_dir / "nasproxy").write_text(f'#!/bin/sh\nexec {sys.executable} -m nasproxy.cli "$@"\n')
    (bin_dir / "nasproxy").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "NASPROXY_DATA": str(idx_root),
        "NASPROXY_CACHE": str(tmp_path / "cache"),
        "NASPROXY_STORAGE": str(storage),
        "SEARCH": "--space tiny --proxy full --dataset mnist --holdout 50 --epochs 2 --repeats 1 --backend aten",
        "DEVICE": "cpu",
        "SLURM_ARRAY_JOB_ID": "42",
        "SLURM_JOB_END_TIME": str(int(time.time()) + 3600),
    }
    tasks = [
        subprocess.Popen(
            ["bash", str(SCRIPT)],
            cwd=tmp_path,
            env={**env, "SLURM_ARRAY_TASK_ID": str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    outputs = [task.communicate(timeout=600)[0] for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs
    assert all(f"task {i} of job 42" in out for i, out in enumerate(outputs))
    store = open_storage(str(storage))
    (name,) = optuna.get_all_study_names(store)
    study = optuna.load_study(study_name=name, storage=store)
    complete = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert Counter(t.user_attrs["arch_id"] for t in complete) == Counter(
        {a: 1 for a in {t.user_attrs["arch_id"] for t in complete}}
    )
    assert len(complete) == 8


def test_the_recipe_needs_a_storage(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NASPROXY_STORAGE"}
    result = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "set NASPROXY_STORAGE" in result.stderr
