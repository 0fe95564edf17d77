from functools import partial

import pytest
import torch

from nasproxy import NasproxyError, TrainConfig, accuracy, train_from_scratch
from nasproxy.models import ConvNetSpec, build_model, convnet_builder
from tests._helpers import separable


@pytest.mark.parametrize("norm", ["instance", "batch"])
@pytest.mark.parametrize("n", [16, 40])  # one batch per epoch (shared input) and several shuffled batches
def test_packed_training_equals_one_network_at_a_time(norm, n):
    images, labels = separable(n)
    builder = partial(
        convnet_builder(ConvNetSpec(width=8, depth=2, norm=norm)), channels=1, num_classes=4, image_size=(28, 28)
    )
    cfg = TrainConfig(epochs=4, batch_size=16)
    packed = train_from_scratch(builder, images, labels, cfg, seeds=[3, 4, 5])
    single = [
        train_from_scratch(builder, images, labels, TrainConfig(epochs=4, batch_size=16, pack=1), seeds=[s])[0]
        for s in (3, 4, 5)
    ]
    for a, b in zip(packed, single):
        for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
            torch.testing.assert_close(pa, pb, rtol=1e-3, atol=1e-4)
    test_x, test_y = separable(64, seed=1)
    assert accuracy(packed, test_x, test_y, pack=32) == pytest.approx(
        accuracy(single, test_x, test_y, pack=1), abs=1 / 64
    )


def test_training_learns_and_is_reproducible():
    images, labels = separable(64)
    builder = partial(build_model, "convnet-w16-d2-instance-relu-avg", channels=1, num_classes=4, image_size=(28, 28))
    cfg = TrainConfig(epochs=20, batch_size=32, lr=0.05)
    first = train_from_scratch(builder, images, labels, cfg, seeds=[0])
    again = train_from_scratch(builder, images, labels, cfg, seeds=[0])
    test_x, test_y = separable(200, seed=7)
    assert accuracy(first, test_x, test_y)[0] > 0.9
    for a, b in zip(first[0].parameters(), again[0].parameters()):
        assert torch.equal(a, b)


def test_non_convnet_models_train_one_at_a_time():
    images, labels = separable(32)
    builder = partial(build_model, "mlp", channels=1, num_classes=4, image_size=(28, 28))
    nets = train_from_scratch(builder, images, labels, TrainConfig(epochs=30, batch_size=32), seeds=[0, 1])
    assert min(accuracy(nets, images, labels)) > 0.9


def test_max_steps_caps_sgd_steps():
    from nasproxy.engine import fit

    images, labels = separable(40)
    net = build_model("mlp", channels=1, num_classes=4, image_size=(28, 28))
    stats = fit(
        [net],
        images,
        labels,
        TrainConfig(epochs=100, batch_size=8, max_steps=7),
        generators=[torch.Generator().manual_seed(0)],
    )
    assert stats.steps == 7


def test_bf16_autocast_trains_close_to_fp32():
    images, labels = separable(64)
    builder = partial(build_model, "convnet-w16-d2-instance-relu-avg", channels=1, num_classes=4, image_size=(28, 28))
    test_x, test_y = separable(200, seed=7)
    accs = {
        p: accuracy(
            train_from_scratch(
                builder, images, labels, TrainConfig(epochs=20, batch_size=32, lr=0.05, precision=p), seeds=[0]
            ),
            test_x,
            test_y,
        )[0]
        for p in ("fp32", "bf16")
    }
    assert accs["bf16"] == pytest.approx(accs["fp32"], abs=0.05)


def test_bad_config_is_rejected():
    with pytest.raises(NasproxyError, match="precision 'fp8'"):
        TrainConfig(precision="fp8")


def test_packing_rules_by_device_batch_and_network_size():
    from nasproxy.engine._accel import CUDA_PACK_MAX_FLOPS, pack_limit, training_pack

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    paper = build_model("convnet", channels=1, num_classes=10, image_size=(28, 28))
    heavy = build_model("convnet-w256-d3-none-relu-none", channels=1, num_classes=10, image_size=(28, 28))
    assert paper.flops_per_image < CUDA_PACK_MAX_FLOPS < heavy.flops_per_image
    assert pack_limit(None, cpu, 10, paper) > 1 and pack_limit(None, cpu, 100, paper) == 1
    assert pack_limit(None, cuda, 256, paper) > 1 and pack_limit(None, cuda, 256, heavy) == 1
    assert pack_limit(4, cpu, 256, paper) == 4
    auto = TrainConfig()
    assert training_pack(auto, cpu, paper) == 1 and training_pack(auto, cuda, heavy) == 1
    assert training_pack(auto, cuda, paper) > 1 and training_pack(TrainConfig(pack=3), cpu, paper) == 3


@pytest.mark.parametrize("arch", ["convnet", "convnet-w64-d2-batch-sigmoid-none", "convnet-w32-d1-layer-relu-avg"])
def test_convnet_flops_per_image_match_the_flop_counter(arch):
    from nasproxy.search._cost import forward_flops

    build = partial(build_model, arch, channels=1, num_classes=10, image_size=(28, 28))
    # the counter sees convolutions and matrix products only, as the analytic count does
    assert build().flops_per_image == forward_flops(build, (1, 28, 28))


def test_progress_counts_every_network_epoch_also_when_packed():
    images, labels = separable(16)
    builder = partial(build_model, "convnet-w8-d1-instance-relu-avg", channels=1, num_classes=4, image_size=(28, 28))
    ticks = []
    train_from_scratch(builder, images, labels, TrainConfig(epochs=3), seeds=[0, 1, 2], progress=ticks.append)
    assert sum(ticks) == 9


# the max-pool net runs nasproxy's own max-pool autograd function through the compiler
@pytest.mark.slow
@pytest.mark.parametrize("arch", ["convnet-w8-d2-instance-relu-avg", "convnet-w8-d2-layer-leakyrelu-max"])
def test_compiled_training_and_scoring_match_eager(arch):
    # n=40 with batch 16: full batches run compiled, the odd last batch of each epoch eagerly
    images, labels = separable(40)
    builder = partial(build_model, arch, channels=1, num_classes=4, image_size=(28, 28))
    eager = train_from_scratch(builder, images, labels, TrainConfig(epochs=3, batch_size=16, compile=False), seeds=[0])
    fast = train_from_scratch(builder, images, labels, TrainConfig(epochs=3, batch_size=16, compile=True), seeds=[0])
    for a, b in zip(eager[0].parameters(), fast[0].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    test_x, test_y = separable(64, seed=1)
    assert accuracy(fast, test_x, test_y, batch_size=16, compile=True) == pytest.approx(
        accuracy(fast, test_x, test_y, batch_size=16, compile=False), abs=1 / 64
    )


def test_compile_failure_falls_back_to_eager_with_a_warning(monkeypatch):
    from nasproxy.engine import _accel as engine

    def broken_compile(module, **_):
        def fail(x):
            raise RuntimeError("no C++ compiler")

        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setattr(engine, "_compile_broken", False)
    images, labels = separable(16)
    builder = partial(build_model, "convnet-w8-d1-instance-relu-avg", channels=1, num_classes=4, image_size=(28, 28))
    with pytest.warns(UserWarning, match="torch.compile failed"):
        fallback = train_from_scratch(builder, images, labels, TrainConfig(epochs=2, compile=True), seeds=[0])
    eager = train_from_scratch(builder, images, labels, TrainConfig(epochs=2, compile=False), seeds=[0])
    for a, b in zip(eager[0].parameters(), fallback[0].parameters()):
        assert torch.equal(a, b)


def test_compile_auto_rule(monkeypatch):
    from nasproxy.engine import use_compile

    monkeypatch.delenv("NASPROXY_COMPILE", raising=False)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    bf16, fp32 = {"precision": "bf16"}, {"precision": "fp32"}
    assert use_compile(None, 400, 400, cpu, **bf16) and not use_compile(None, 399, 400, cpu, **bf16)
    assert not use_compile(None, 10**9, 400, cpu, **fp32)  # the C++ kernels leave nothing to gain
    assert not use_compile(None, 10**9, 400, cuda, **bf16)  # measured a loss on a GPU
    assert use_compile(True, 0, 400, cuda, **fp32) and not use_compile(False, 10**9, 400, cpu, **bf16)
    monkeypatch.setenv("NASPROXY_COMPILE", "0")
    assert not use_compile(None, 10**9, 400, cpu, **bf16)


def test_cuda_graph_auto_rule(monkeypatch):
    from nasproxy.engine._accel import CUDA_GRAPH_MIN_STEPS, use_cuda_graph

    monkeypatch.delenv("NASPROXY_CUDA_GRAPHS", raising=False)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not use_cuda_graph(True, 10**6, cpu, False)  # CPUs have no graphs to capture
    assert use_cuda_graph(None, CUDA_GRAPH_MIN_STEPS, cuda, False)
    assert not use_cuda_graph(None, CUDA_GRAPH_MIN_STEPS - 1, cuda, False)  # the capture would not pay
    assert not use_cuda_graph(True, 10**6, cuda, True)  # a compiled network brings its own
    assert use_cuda_graph(True, 1, cuda, False) and not use_cuda_graph(False, 10**6, cuda, False)
    monkeypatch.setenv("NASPROXY_CUDA_GRAPHS", "0")
    assert not use_cuda_graph(None, 10**6, cuda, False)
    monkeypatch.setenv("NASPROXY_CUDA_GRAPHS", "1")
    assert use_cuda_graph(None, 1, cuda, False)


def test_cuda_packing_limit_can_be_moved_by_environment(monkeypatch):
    from nasproxy.engine import training_pack

    cuda = torch.device("cuda")
    paper = build_model("convnet", channels=1, num_classes=10, image_size=(28, 28))
    assert training_pack(TrainConfig(), cuda, paper) > 1
    monkeypatch.setenv("NASPROXY_CUDA_PACK_MAX_FLOPS", "0")
    assert training_pack(TrainConfig(), cuda, paper) == 1


def test_no_networks_is_no_work():
    from nasproxy.engine import fit

    images, labels = separable(8)
    assert accuracy([], images, labels) == []
    assert fit([], images, labels, TrainConfig(), generators=[]).steps == 0


def test_denormals_are_flushed_on_every_thread():
    from nasproxy.engine import flush_denormals

    tiny = torch.full((1 << 20,), 1e-39)  # denormal in fp32; large enough for every intra-op thread to share
    if not flush_denormals():
        pytest.skip("no flush-to-zero flags on this CPU")
    assert torch.count_nonzero(tiny * 1.0) == 0


def test_epoch_hook_sees_every_network_at_the_requested_epochs_packed_or_not():
    from nasproxy.engine import EpochHook

    images, labels = separable(40)
    test_x, test_y = separable(64, seed=1)
    builder = partial(convnet_builder(ConvNetSpec(width=8, depth=2)), channels=1, num_classes=4, image_size=(28, 28))
    seen = {}

    def record(pack):
        def fn(epoch, indices, nets):
            for i, acc in zip(indices, accuracy(list(nets), test_x, test_y)):
                seen[(pack, epoch, i)] = acc

        return EpochHook(frozenset({2, 3}), fn)

    results = {}
    for pack in (1, 3):
        cfg = TrainConfig(epochs=4, batch_size=16, pack=pack)
        results[pack] = train_from_scratch(builder, images, labels, cfg, seeds=[3, 4, 5], hook=record(pack))
    assert sorted(k[1:] for k in seen if k[0] == 1) == [(e, i) for e in (2, 3) for i in range(3)]
    for epoch in (2, 3):
        for i in range(3):
            assert seen[(3, epoch, i)] == pytest.approx(seen[(1, epoch, i)], abs=1 / 64)
    # looking does not touch: the hooked run ends where an unhooked one does
    plain = train_from_scratch(builder, images, labels, TrainConfig(epochs=4, batch_size=16, pack=1), seeds=[3, 4, 5])
    for a, b in zip(results[1], plain):
        for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
            torch.testing.assert_close(pa, pb, rtol=0, atol=0)
