"""The CUDA paths (packing, large scoring batches, packed class gradients, compile, bf16) compute what the CPU
paths compute, and a seed gives the same result on the GPU every time. Skipped where no GPU is visible (CI);
run with ``pytest tests/test_cuda.py`` on a GPU machine."""

import json
from dataclasses import replace
from functools import partial

import pytest
import torch
from click.testing import CliRunner

from nasproxy import CondensedSet, TrainConfig, accuracy, train_from_scratch
from nasproxy.cli import main
from nasproxy.condensers import CONDENSERS, RunContext
from nasproxy.models import build_model
from tests._helpers import separable

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def cpu_twins_on_aten(monkeypatch):
    """The CPU twins run PyTorch's operators, as CUDA does: building nasproxy's C++ kernels takes minutes on a
    bare GPU machine (a lent one ran out of its test stage doing it), and tests/backends checks those kernels
    against these operators on CPUs."""
    from nasproxy.backends import cpu

    monkeypatch.setattr(cpu, "build", lambda *a, **k: False)


NET = "convnet-w16-d2-instance-relu-avg"


@pytest.fixture
def exact_fp32():
    """cuDNN runs fp32 convolutions in TF32 by default (10-bit mantissa); comparisons with the CPU need fp32."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = before


def _builder(arch: str = NET):
    return partial(build_model, arch, channels=1, num_classes=4, image_size=(28, 28))


def _states_close(a, b, rtol, atol):
    for na, nb in zip(a, b):
        for pa, pb in zip(na.state_dict().values(), nb.state_dict().values()):
            torch.testing.assert_close(pa.cpu(), pb.cpu(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("arch", [NET, "convnet-w16-d2-batch-relu-max", "convnet-w16-d2-layer-leakyrelu-max"])
def test_cuda_training_and_scoring_equal_the_cpu(exact_fp32, arch):
    images, labels = separable(40)
    cfg = TrainConfig(epochs=3, batch_size=16)  # several shuffled batches; packed on CUDA, one by one on CPUs
    cpu = train_from_scratch(_builder(arch), images, labels, cfg, seeds=[0, 1, 2])
    gpu = train_from_scratch(_builder(arch), images.to(CUDA), labels.to(CUDA), cfg, seeds=[0, 1, 2])
    assert all(p.is_cuda for net in gpu for p in net.parameters())
    _states_close(cpu, gpu, rtol=1e-3, atol=1e-4)
    test_x, test_y = separable(300, seed=1)
    assert accuracy(gpu, test_x.to(CUDA), test_y.to(CUDA)) == pytest.approx(accuracy(cpu, test_x, test_y), abs=2 / 300)


def test_cuda_training_is_reproducible_bit_for_bit():
    images, labels = separable(40)
    images, labels = images.to(CUDA), labels.to(CUDA)
    cfg = TrainConfig(epochs=5, batch_size=16)
    first = train_from_scratch(_builder(), images, labels, cfg, seeds=[0, 1])
    again = train_from_scratch(_builder(), images, labels, cfg, seeds=[0, 1])
    for a, b in zip(first, again):
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert torch.equal(pa, pb)
    assert accuracy(first, images, labels) == accuracy(again, images, labels)


def test_cuda_compiled_training_matches_eager():
    images, labels = separable(32)
    images, labels = images.to(CUDA), labels.to(CUDA)
    arch = "convnet-w16-d2-layer-leakyrelu-max"
    eager = train_from_scratch(_builder(arch), images, labels, TrainConfig(epochs=3, compile=False), seeds=[0, 1])
    fast = train_from_scratch(_builder(arch), images, labels, TrainConfig(epochs=3, compile=True), seeds=[0, 1])
    _states_close(eager, fast, rtol=1e-2, atol=1e-3)


@pytest.fixture
def replays(monkeypatch):
    """Counts CUDA graph replays, so that a test knows the graphed path ran."""
    count = [0]
    original = torch.cuda.CUDAGraph.replay

    def counting(self):
        count[0] += 1
        return original(self)

    monkeypatch.setattr(torch.cuda.CUDAGraph, "replay", counting)
    return count


@pytest.mark.parametrize(
    ("n", "batch", "precision"),
    [(32, 256, "fp32"), (40, 16, "fp32"), (32, 256, "bf16")],  # whole set; shuffled batches, odd last; bf16
)
def test_cuda_graph_training_equals_eager(replays, n, batch, precision):
    from nasproxy.engine import _accel as engine

    images, labels = separable(n)
    images, labels = images.to(CUDA), labels.to(CUDA)
    arch = "convnet-w16-d2-batch-relu-max"  # batch norm: running statistics are updated inside the graph too
    cfg = TrainConfig(epochs=12, batch_size=batch, precision=precision)  # the learning rate decays at epoch 6
    eager = train_from_scratch(_builder(arch), images, labels, replace(cfg, cuda_graph=False), seeds=[0, 1, 2])
    assert replays[0] == 0
    graphed = train_from_scratch(_builder(arch), images, labels, replace(cfg, cuda_graph=True), seeds=[0, 1, 2])
    assert not engine._graph_capture_broken
    full_batches = 12 * (n // batch if n > batch else 1)  # the odd-sized last batch of an epoch runs eagerly
    assert replays[0] == full_batches - 2  # all full-size steps but the two eager warm-up steps
    for a, b in zip(eager, graphed):
        for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
            torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6, msg=name)
    test_x, test_y = (t.to(CUDA) for t in separable(200, seed=3))
    assert accuracy(graphed, test_x, test_y) == accuracy(eager, test_x, test_y)


def test_cuda_packed_graphed_training_resumes_from_a_checkpoint(replays, tmp_path):
    from nasproxy.engine import Checkpoint, EpochHook

    images, labels = (t.to(CUDA) for t in separable(40))
    cfg = TrainConfig(epochs=8, batch_size=16, cuda_graph=True)  # packed: the three networks train as one
    whole = train_from_scratch(_builder(), images, labels, cfg, seeds=[0, 1, 2])

    def killed(epoch, indices, nets):
        raise KeyboardInterrupt

    ckpt = Checkpoint(tmp_path / "run.pt", interval=0)
    with pytest.raises(KeyboardInterrupt):
        train_from_scratch(
            _builder(), images, labels, cfg, seeds=[0, 1, 2], hook=EpochHook(frozenset({5}), killed), checkpoint=ckpt
        )
    resumed = train_from_scratch(_builder(), images, labels, cfg, seeds=[0, 1, 2], checkpoint=ckpt)
    assert replays[0] > 0
    # the resumed run captures its graphs anew (two eager warm-up steps at another point): equal up to rounding
    _states_close(whole, resumed, rtol=1e-5, atol=1e-6)


def test_cuda_graph_condensation_equals_eager(small_mnist, monkeypatch):
    monkeypatch.setenv("NASPROXY_CUDA_GRAPHS", "0")
    eager = _dc(small_mnist, CUDA, inner_loop=4)
    monkeypatch.setenv("NASPROXY_CUDA_GRAPHS", "1")
    graphed = _dc(small_mnist, CUDA, inner_loop=4)
    torch.testing.assert_close(graphed.images, eager.images, rtol=1e-4, atol=1e-5)


def test_cuda_bf16_trains_close_to_fp32():
    images, labels = separable(64)
    images, labels = images.to(CUDA), labels.to(CUDA)
    test_x, test_y = (t.to(CUDA) for t in separable(200, seed=7))
    accs = {
        p: accuracy(
            train_from_scratch(
                _builder(), images, labels, TrainConfig(epochs=20, batch_size=32, lr=0.05, precision=p), seeds=[0]
            ),
            test_x,
            test_y,
            precision=p,
        )[0]
        for p in ("fp32", "bf16")
    }
    assert accs["fp32"] > 0.9 and accs["bf16"] == pytest.approx(accs["fp32"], abs=0.05)


def _dc(dataset, device, **options):
    condenser = CONDENSERS.get("dc").from_options(
        {"model": NET, "real_batch": 8, "inner_loop": 2, "iterations": 2, **options}
    )
    return condenser.condense(dataset, ipc=2, seed=5, context=RunContext(device=device, progress=False))


def test_cuda_condensation_equals_the_cpu_and_repeats_exactly(small_mnist, exact_fp32):
    gpu = _dc(small_mnist, CUDA)  # class gradients packed into one pass on CUDA
    assert not gpu.images.is_cuda  # results come back to the host for saving
    torch.testing.assert_close(gpu.images, _dc(small_mnist, torch.device("cpu")).images, rtol=1e-2, atol=1e-2)
    assert torch.equal(gpu.images, _dc(small_mnist, CUDA).images)
    assert gpu.extra["loss_history"] == _dc(small_mnist, CUDA).extra["loss_history"]


def test_cli_condenses_and_evaluates_on_cuda(idx_root, tmp_path):
    out = tmp_path / "p.pt"
    common = ["--dataset", "mnist", "--data-root", str(idx_root), "--holdout", "50"]
    result = CliRunner().invoke(
        main,
        ["condense", *common, "--ipc", "1", "--iterations", "2", "--real-batch", "8", "--device", "cuda", "-q"]
        + ["--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert CondensedSet.load(out).meta["device"].startswith("cuda")
    result = CliRunner().invoke(
        main,
        ["evaluate", str(out), "--networks", "2", "--epochs", "5", "--device", "cuda", "--json", "--csv", "", "-q"]
        + ["--data-root", str(idx_root)],
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.output.strip().splitlines()[-1])
    assert row["device"].startswith("cuda") and len(row["accuracies"]) == 2


def test_two_workers_on_one_gpu_score_what_one_worker_scores(small_mnist, idx_root, tmp_path):
    from nasproxy import condense
    from nasproxy.search import SearchRequest, completed_architectures, plan_search, run_search
    from nasproxy.search._storage import open_storage

    saved = tmp_path / "random.pt"
    condense(small_mnist, method="random", ipc=2, seed=0).save(saved)
    base = dict(
        space="tiny", proxy="random", proxy_file=str(saved), data_root=str(idx_root), epochs=2, repeats=2, threads=1
    )
    one = SearchRequest(**base, device="cuda", storage=str(tmp_path / "one.journal"))
    two = SearchRequest(**base, devices=("cuda:0", "cuda:0"), storage=str(tmp_path / "two.journal"))
    run_search(one, progress=False)
    run_search(two, workers=2, progress=False)

    def values(request):
        import optuna

        plan, _ = plan_search(request)
        study = optuna.load_study(study_name=plan.study_name, storage=open_storage(plan.storage_url))
        return {a: t.value for a, t in completed_architectures(study).items()}

    assert values(two) == values(one)


def test_cuda_ground_truth_scoring_at_epochs_leaves_training_unchanged(small_mnist, replays):
    """The epoch hook scores networks between replays of a captured step: the final scores must not move."""
    from nasproxy.search.proxies import Protocol, Runtime
    from nasproxy.search.proxies._training import score_epochs, train_and_score
    from nasproxy.spaces import load_space

    space = load_space("tiny")
    cand = space.get("convnet-w16-d2-instance-relu-avg")
    protocol = Protocol(
        proxy="full",
        dataset=small_mnist.name,
        holdout=len(small_mnist.val_images),
        split_seed=0,
        val_fingerprint=small_mnist.val_fingerprint,
        epochs=8,
        repeats=2,
        batch_size=32,
        score_test=True,
    )
    args = (space, cand, small_mnist, protocol, small_mnist.train_images, small_mnist.train_labels)
    config, runtime = protocol.train_config(cuda_graph=True), Runtime(device=CUDA)
    at_end = train_and_score(*args, config, runtime)
    series = train_and_score(*args, config, runtime, at_epochs=score_epochs(8))
    assert replays[0] > 0
    assert series.attrs["val_accs"] == at_end.attrs["val_accs"]
    assert series.attrs["test_accs"] == at_end.attrs["test_accs"]
    assert sorted(series.attrs["val_accs_at"], key=int) == ["1", "2", "4"]
