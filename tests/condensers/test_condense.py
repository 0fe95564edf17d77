import pytest
import torch

from nasproxy import NasproxyError, condense, resolve_device
from nasproxy.condensers import CONDENSERS, RunContext
from nasproxy.condensers.dc import paper_loops

SMALL_NET = "convnet-w16-d2-instance-relu-avg"


def test_paper_loops():
    assert paper_loops(1) == (1, 1) and paper_loops(10) == (10, 50) and paper_loops(50) == (50, 10)
    assert paper_loops(5) == (5, 100)


def test_random_proxy_is_class_balanced_real_and_seeded(small_mnist):
    a = condense(small_mnist, method="random", ipc=3, seed=1)
    b = condense(small_mnist, method="random", ipc=3, seed=1)
    c = condense(small_mnist, method="random", ipc=3, seed=2)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert torch.bincount(a.labels).tolist() == [3] * 10
    train = small_mnist.train_images.flatten(1)
    assert all((train == img.flatten()).all(1).any() for img in a.images)  # every image is a training image
    assert (
        a.meta["method"] == "random"
        and a.meta["seed"] == 1
        and a.meta["val_fingerprint"] == small_mnist.val_fingerprint
    )


def test_unknown_options_and_bad_ipc_are_rejected(small_mnist):
    with pytest.raises(NasproxyError, match="does not take iterations"):
        condense(small_mnist, method="random", ipc=1, options={"iterations": 5})
    with pytest.raises(NasproxyError, match="at least 1 image per class"):
        condense(small_mnist, method="dc", ipc=0)
    with pytest.raises(NasproxyError, match="unknown condenser 'nope'"):
        condense(small_mnist, method="nope", ipc=1)


def _dc(dataset, tmp_path, *, iterations, on_iteration=None, resume=False, **options):
    condenser = CONDENSERS.get("dc").from_options(
        {
            "model": SMALL_NET,
            "real_batch": 8,
            "inner_loop": 2,
            "checkpoint_every": 1,
            "iterations": iterations,
            **options,
        }
    )
    context = RunContext(
        device=resolve_device("cpu"),
        checkpoint=tmp_path / "run.ckpt",
        resume=resume,
        progress=False,
        on_iteration=on_iteration,
    )
    return condenser.condense(dataset, ipc=2, seed=5, context=context)


def test_interrupted_condensation_resumes_exactly(small_mnist, tmp_path):
    straight = _dc(small_mnist, tmp_path / "a", iterations=4)

    def stop_after_two(it, loss):
        if it == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _dc(small_mnist, tmp_path / "b", iterations=4, on_iteration=stop_after_two)
    assert torch.load(tmp_path / "b" / "run.ckpt", weights_only=True)["iteration"] == 2
    resumed = _dc(small_mnist, tmp_path / "b", iterations=4, resume=True)
    torch.testing.assert_close(resumed.images, straight.images)
    assert resumed.extra["loss_history"] == pytest.approx(straight.extra["loss_history"])


def test_resume_refuses_a_checkpoint_of_other_settings(small_mnist, tmp_path):
    _dc(small_mnist, tmp_path, iterations=1)
    with pytest.raises(NasproxyError, match="other settings"):
        _dc(small_mnist, tmp_path, iterations=2, resume=True, lr_img=0.5)


@pytest.mark.parametrize(
    "model,rtol,atol",
    [
        (SMALL_NET, 1e-3, 1e-4),
        # float summation order differs between the two paths; BatchNorm's batch statistics amplify it a little
        ("convnet-w16-d2-batch-relu-avg", 1e-2, 5e-3),
    ],
)
def test_packed_and_looped_class_gradients_condense_the_same(small_mnist, tmp_path, model, rtol, atol):
    # packed replicas run ATen's grouped convolutions; the looped network runs on the aten backend too, as the
    # CPU kernels round differently and the matching loss amplifies it (tests/backends/)
    # one thread: with two, oneDNN splits the reductions of the grouped and the plain convolutions differently
    # on some CPUs (an AMD EPYC here: 3.6e-3 apart after two iterations), noise unrelated to packing
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = _dc(small_mnist, tmp_path / "a", iterations=2, packed=True, model=model, backend="aten")
        b = _dc(small_mnist, tmp_path / "b", iterations=2, packed=False, model=model, backend="aten")
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(a.images, b.images, rtol=rtol, atol=atol)


@pytest.mark.slow
def test_short_real_condensation_on_fashion_mnist_lowers_the_matching_loss(fmnist):
    condensed = condense(fmnist, method="dc", ipc=1, seed=0, options={"iterations": 8, "real_batch": 32})
    losses = condensed.meta["loss_history"]
    assert len(losses) == 8
    assert sum(losses[-3:]) / 3 < 0.8 * losses[0]
    assert condensed.images.shape == (10, 1, 28, 28) and condensed.meta["iterations_done"] == 8


def test_dc_on_small_unequal_classes_matches_on_what_each_class_has(tmp_path):
    """A custom dataset whose classes hold fewer images than --real-batch, and unequal counts, condenses (it
    used to fail stacking the per-class real batches) and says how many real images a step uses."""
    from nasproxy import load_dataset
    from nasproxy.data import SplitSpec

    g = torch.Generator().manual_seed(0)
    counts = [7, 12, 30]
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    images = torch.randint(0, 255, (len(labels), 1, 28, 28), generator=g, dtype=torch.uint8)
    path = tmp_path / "small.pt"
    torch.save(
        {"train_images": images, "train_labels": labels, "test_images": images[:6], "test_labels": labels[:6]}, path
    )
    data = load_dataset(f"tensors:{path}", split=SplitSpec(holdout=3, seed=0))  # one image per class held out
    with pytest.warns(UserWarning, match="smallest class has 6 training images, fewer than real_batch 256"):
        condensed = condense(data, method="dc", ipc=2, seed=0, options={"iterations": 1, "model": SMALL_NET})
    assert torch.bincount(condensed.labels).tolist() == [2, 2, 2] and torch.isfinite(condensed.images).all()


def test_an_hours_budget_stops_at_a_checkpoint_and_resume_finishes_the_same_run(idx_root, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from nasproxy import CondensedSet
    from nasproxy.cli import main

    monkeypatch.chdir(tmp_path)
    args = ["condense", "--dataset", "mnist", "--data-root", str(idx_root), "--holdout", "50", "--method", "dc"]
    args += ["--ipc", "2", "--seed", "5", "--model", SMALL_NET, "--real-batch", "8", "--inner-loop", "2"]
    args += ["--iterations", "3", "--checkpoint-every", "10", "--device", "cpu", "-q"]
    runner = CliRunner()
    stopped = runner.invoke(main, [*args, "--out", "a.pt", "--hours", "1e-9"], catch_exceptions=False)
    assert stopped.exit_code == 75  # EX_TEMPFAIL: not finished, the same command continues
    assert "stopped: the 1e-09-hour budget ran out after 1 of 3 iterations" in stopped.output
    assert "--resume to continue" in stopped.output
    assert not (tmp_path / "a.pt").exists()  # no half-made condensed set, but the iteration done is kept:
    assert torch.load(tmp_path / "a.pt.ckpt", weights_only=True)["iteration"] == 1  # saved off its schedule
    assert runner.invoke(main, [*args, "--out", "a.pt", "--resume"], catch_exceptions=False).exit_code == 0
    assert runner.invoke(main, [*args, "--out", "b.pt"], catch_exceptions=False).exit_code == 0
    torch.testing.assert_close(CondensedSet.load("a.pt").images, CondensedSet.load("b.pt").images)
    bad = runner.invoke(main, [*args, "--out", "c.pt", "--hours", "0"], catch_exceptions=False)
    assert bad.exit_code == 2 and "--hours must be a positive number of hours" in bad.output
