"""The benchmarks' baselines must compute what nasproxy computes, or their timings compare different work."""

import pytest
import torch

from benchmarks.baseline import authors_convnet
from nasproxy.models import build_model


@pytest.mark.parametrize(
    "arch",
    [
        "convnet",
        "convnet-w16-d2-layer-leakyrelu-max",
        "convnet-w16-d3-batch-sigmoid-none",
        "convnet-w8-d1-group-relu-avg",
    ],
)
def test_authors_convnet_computes_nasproxys_convnet(arch):
    ours = build_model(arch, channels=1, num_classes=10, image_size=(28, 28))
    theirs = authors_convnet(arch, channels=1, num_classes=10, image_size=(28, 28))
    # their layers are one flat Sequential, ours one Sequential per block: the same tensors in the same order
    mine = {k.replace("classifier_", "classifier."): v for k, v in ours.state_dict().items()}
    layers = [k for k in theirs.state_dict() if k.startswith("features.")]
    state = dict(zip(layers, [v for k, v in mine.items() if k.startswith("features.")]))
    state.update({k: v for k, v in mine.items() if k.startswith("classifier.")})
    theirs.load_state_dict(state)
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(theirs(x), ours(x), rtol=1e-4, atol=1e-5)


def test_ceiling_counts_a_training_step_as_forward_plus_both_gradients():
    from benchmarks.ceiling import score_flops_per_image, train_flops_per_image

    cpu = torch.device("cpu")
    forward = build_model("convnet", channels=1, num_classes=10, image_size=(28, 28)).flops_per_image
    first_conv = 2 * 9 * 1 * 128 * 32 * 32  # its input gradient is never computed: the images need none
    assert score_flops_per_image("convnet", cpu) == forward
    assert train_flops_per_image("convnet", cpu) == 3 * forward - first_conv


def test_ceiling_dc_iteration_adds_up_its_parts():
    from benchmarks.ceiling import REAL_BATCH, dc_iteration_flops, train_flops_per_image

    cpu = torch.device("cpu")
    step = train_flops_per_image("convnet", cpu)
    one_ipc = dc_iteration_flops(1, cpu)  # one matching step, no inner updates
    real = 10 * REAL_BATCH * step
    # the synthetic images' gradients with their graph, and the matching loss's backward through it, cost
    # more than a plain training step of those 10 images but far less than the real images' gradients
    assert real + 10 * step < one_ipc < 1.5 * real
    ten_ipc = dc_iteration_flops(10, cpu)  # 10 matching steps, 9 x 50 inner updates on 100 images
    assert ten_ipc > 10 * real + 9 * 50 * 100 * step


def test_ceiling_joins_the_measurements_of_its_setting(tmp_path):
    import pandas as pd

    from benchmarks.ceiling import _measured

    setting = "20 models x 300 epochs, random 10-ipc proxy"
    pd.DataFrame(
        {
            "setting": [setting, setting, setting, "other"],
            "arm": ["naive", "fast", "slow", "naive"],
            "median": [100.0, 40.0, 60.0, 1.0],
        }
    ).to_csv(tmp_path / "evaluate.csv", index=False)
    (found,) = _measured(tmp_path, "evaluate", setting, "median")
    assert found == {
        "source": "evaluate.csv",
        "baseline_seconds": 100.0,
        "nasproxy_arm": "fast",
        "nasproxy_seconds": 40.0,
    }


def test_the_benchmark_command_loads_every_benchmark_and_refuses_an_unknown_one(monkeypatch, capsys):
    from benchmarks.__main__ import main

    def run(*args: str) -> tuple[int, str]:
        monkeypatch.setattr("sys.argv", ["python -m benchmarks", *args])
        with pytest.raises(SystemExit) as exited:
            main()
        return exited.value.code, capsys.readouterr().err.splitlines()[-1]

    code, error = run("nope")
    assert code == 2
    for name in ("condense", "candidate", "evaluate", "time-to-quality", "candidate-precision", "ceiling", "sweep"):
        assert name in error
    code, error = run("condense", "--iterations", "1")
    assert code == 2 and "--iterations: at least 2" in error


@pytest.mark.slow
def test_gpu_script_rehearses_every_stage_on_the_cpu(tmp_path):
    """The lent GPU's one call, rehearsed: every stage runs and leaves its results, labelled as a rehearsal."""
    import os
    import subprocess
    from pathlib import Path

    import pandas as pd

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "out"
    env = {**os.environ, "NASPROXY_CACHE": str(tmp_path / "cache"), "PYTHON": "python"}
    proc = subprocess.run(
        ["bash", "benchmarks/gpu.sh", "--rehearse", str(out)], cwd=root, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (out / "log.txt").read_text()
    assert log.count("== exit 0") == 3, log[-3000:]  # tests, sweep, condense + profile
    sweep = pd.read_csv(out / "sweep-2epochs-1repeats-quick.csv")
    assert {"architectures", "seconds", "seconds_720", "extrapolated", "device", "arm"} <= set(sweep.columns)
    assert sweep["architectures"].tolist() == [2, 1] and sweep["extrapolated"].all()
    assert (sweep["epochs"] == 2).all() and (sweep["repeats"] == 1).all()  # the shorter protocol, in the rows
    profile = pd.read_csv(out / "dc-profile-ipc1-2iterations-batch16.csv")
    assert {"real-image gradients", "matching loss, second-order backward, image step"} <= set(profile["part"])
    assert profile["share"].sum() == pytest.approx(1.0, abs=0.01)
    condense = pd.read_csv(out / "condense-ipc1-2iterations-batch16-1models-4epochs.csv")
    assert condense["runs"].tolist() == [1, 1] and condense["eval_models"].tolist() == [1, 1]  # baseline, nasproxy
    assert (condense["eval_epochs"] == 4).all() and condense["accuracy_after_K"].between(0, 1).all()
    assert condense["setting"].str.contains("but 16 real images per class").all()  # a rehearsal is labelled so
    assert "stand-ins of random images" in (out / "env.txt").read_text()  # and its data, which is not the real one
