"""The one way nasproxy trains and scores networks.

Evaluation, NAS candidates, the early-stopping and full-data baselines and the condenser's inner network
updates all go through :func:`fit` (train given modules in place) or :func:`train_from_scratch` (build
seeded networks, train them, return them), and :func:`accuracy` for scoring.

What makes it fast, each switchable: tensors stay in memory (no DataLoader); on CUDA several ConvNets of one
spec (all but the heaviest) are packed into one replicated module (see ``models._convnet``) and trained and
scored together (on CPUs only small scoring batches pack, see :func:`pack_limit`); when a training set fits
into one batch every replica shares the same input, so the first conv is one dense conv; optional bf16
autocast; on CPUs in bf16 ``torch.compile`` of the network for long runs (it fuses the memory-bound
normalisation, activation and pooling passes around the convolutions: 1.5x per bf16 step here, see
:func:`use_compile`);
scoring under ``inference_mode`` in large batches on GPUs (256 images on CPUs); and on Linux/glibc the
allocator is told to keep freed memory instead of returning it to the OS, which halves CPU step time here
(see :func:`tune_allocator`). On CUDA, cuDNN is held to deterministic algorithms (:func:`prepare_device`),
and long training calls replay each SGD step as a captured CUDA graph (:func:`use_cuda_graph`). The
networks themselves add two more on CPUs in fp32: a ConvNet's first block (convolution, norm, activation,
pooling) runs as a few fused C++ passes that store nothing at full resolution (``models._first_block``), and
its 3x3 convolutions past the first layer as Winograd F(4x4, 3x3), a quarter of the multiply-adds
(``models._winograd``).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import platform
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasproxy._errors import NasproxyError
from nasproxy.models import ConvNet, stack_convnets, unstack_convnet

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run. Defaults are the paper's evaluation protocol."""

    epochs: int = 300  # passes over the training images
    batch_size: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay_epochs: tuple[int, ...] | None = None  # None: once, half-way through training (paper)
    lr_decay: float = 0.1  # factor applied at each decay epoch
    max_steps: int | None = None  # stop after this many SGD steps (early-stopping baseline)
    precision: str = "fp32"  # fp32 | bf16 (autocast; weights and optimizer stay fp32)
    pack: int | None = None  # ConvNets of one spec trained as one packed module; None: auto (see training_pack)
    compile: bool | None = None  # torch.compile the network; None: auto (see use_compile)
    cuda_graph: bool | None = None  # replay each SGD step as a captured CUDA graph; None: auto (use_cuda_graph)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise NasproxyError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.epochs < 0 or self.batch_size < 1 or (self.pack is not None and self.pack < 1):
            raise NasproxyError("epochs must be >= 0, batch size and pack >= 1")

    def decay_steps(self, steps_per_epoch: int) -> set[int]:
        """SGD steps before which the learning rate is multiplied by ``lr_decay``."""
        if self.lr_decay_epochs is not None:
            return {e * steps_per_epoch for e in self.lr_decay_epochs if e > 0}
        half = self.max_steps // 2 if self.max_steps is not None else self.epochs // 2 * steps_per_epoch
        return {half} - {0}


@dataclass(frozen=True)
class EpochHook:
    """Look at the networks part-way through training (e.g. score them at half the epochs): after each epoch
    in ``epochs`` (1-based), ``fn(epoch, indices, networks)`` gets the networks of ``fit``'s ``modules`` at
    ``indices`` as trained so far. It must not change them."""

    epochs: frozenset[int]
    fn: Callable[[int, Sequence[int], Sequence[nn.Module]], None]


@dataclass
class FitStats:
    steps: int = 0


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise NasproxyError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NasproxyError("device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    return dev


def device_name(device: torch.device) -> str:
    """What artifacts record as the device a result was computed on."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({_cpu_model()}, {torch.get_num_threads()} threads)"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


_ALLOCATOR_TUNED = False


def tune_allocator() -> bool:
    """Ask glibc to serve large tensors from a heap it keeps, instead of fresh ``mmap``s.

    Without it every activation larger than ~32 MB is a new mapping whose pages fault in one by one, which
    on this kind of machine costs as much as the convolutions. Off with ``NASPROXY_TUNE_ALLOCATOR=0``.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED or os.environ.get("NASPROXY_TUNE_ALLOCATOR", "1") == "0":
        return _ALLOCATOR_TUNED
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    _ALLOCATOR_TUNED = bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    return _ALLOCATOR_TUNED


_DENORMALS_FLUSHED = False


def flush_denormals() -> bool:
    """Make every intra-op CPU thread treat denormal floats as zero (x86's FTZ and DAZ flags).

    A network that fits its 100 training images drives gradients into the denormal range, where each
    operation falls into microcode: on a Xeon here, training 2 W128 D1 ConvNets for 100 epochs took 26.3 s,
    13.4 s with denormals flushed, same accuracy. The flags live in each thread's control register and
    ``torch.set_flush_denormal`` sets only the calling thread's, so OpenMP's workers (which threads
    started later inherit) are visited with an empty parallel region. Off with ``NASPROXY_FLUSH_DENORMALS=0``.
    """
    global _DENORMALS_FLUSHED
    if _DENORMALS_FLUSHED or os.environ.get("NASPROXY_FLUSH_DENORMALS", "1") == "0":
        return _DENORMALS_FLUSHED
    if not torch.set_flush_denormal(True):  # not an x86 or ARM CPU with these flags
        return False
    _DENORMALS_FLUSHED = True
    gomp = _loaded_libgomp()
    if gomp is not None:
        region = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: torch.set_flush_denormal(True))
        gomp.GOMP_parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        gomp.GOMP_parallel(ctypes.cast(region, ctypes.c_void_p), None, torch.get_num_threads(), 0)
    return True


def _loaded_libgomp() -> ctypes.CDLL | None:
    """The OpenMP runtime torch runs its parallel regions on, if it is GNU's and already loaded."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libgomp" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def prepare_device(device: torch.device) -> None:
    """Process-wide settings the engine relies on: glibc keeps freed memory (CPUs, :func:`tune_allocator`);
    denormals are flushed to zero (CPUs, :func:`flush_denormals`); cuDNN uses only deterministic algorithms
    (CUDA), so that a seed gives the same networks on every run (some of its default weight-gradient
    algorithms add in a varying order). ``NASPROXY_DETERMINISTIC=0`` leaves cuDNN's choice alone."""
    tune_allocator()
    if device.type == "cpu":
        flush_denormals()
    if device.type == "cuda" and os.environ.get("NASPROXY_DETERMINISTIC", "1") != "0":
        torch.backends.cudnn.deterministic = True


def autocast(precision: str, device: torch.device, *, cache: bool = True):
    """bf16 autocast or nothing; ``cache=False`` where the step is captured into a CUDA graph, as PyTorch asks
    of autocast around captured work (``torch.cuda.make_graphed_callables``)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()


CPU_PACK_MAX_BATCH = 32
# Scoring batch: CPU activations of 2,048 images (1 GB per ConvNet layer) run 1.8x slower per image than
# 256 in fp32 here; a GPU wants large batches.
SCORE_BATCH_CPU = 256
SCORE_BATCH_CUDA = 2048
MAX_PACK = 32
# A cold compile of the paper's ConvNet training step took 10-15 s on the 2-core development CPU and saved
# ~40 ms per bf16 step of 100 images (136 -> 92 ms) and ~20 ms in fp32 (200 -> 177 ms): cold, it pays after
# ~300 (bf16) to ~600 (fp32) steps; inductor's on-disk cache makes a repeat compile ~1.5 s. Other
# architectures save less or lose (a bf16 step of W128 D2 without norm and with max-pooling: 120 ms eager,
# 158 ms compiled), and every new architecture compiles cold: a NAS candidate (5 networks x 100 steps, 75,000
# images scored) took 57 + 107 s compiled (results/bench/candidate-compiled.csv), 38 + 84 s eager
# (candidate-val-and-test.csv).
COMPILE_MIN_STEPS = 2_000  # network-steps of one fit() that pay for compiling it (evaluation: 20 x 300)
COMPILE_MIN_SCORED = 150_000  # images x networks of one accuracy() call that pay for compiling it
_DYNAMO_MAX_GRAPHS = 16  # distinct compiled networks kept before dynamo's caches are reset
# dynamo's cache entries per code object (one per network, mode and input shape) before it silently runs
# eager; the default (8) is too few for 16 networks
_DYNAMO_RECOMPILE_LIMIT = 64


def _env_choice(name: str) -> bool | None:
    """An automatic choice's override from the environment: ``0`` off, ``1`` on, anything else None (auto)."""
    return {"0": False, "1": True}.get(os.environ.get(name, "auto"))


def use_compile(requested: bool | None, work: int, threshold: int, device: torch.device, *, precision: str) -> bool:
    """Whether to ``torch.compile``: as requested, else (auto) for bf16 on CPUs when the work is big enough to
    pay for it. Not in fp32 on CPUs, where the networks' own C++ kernels (the fused first block and Winograd
    convolutions, ``models._first_block``, ``models._winograd``) left the compiler nothing to gain: a training
    step of the paper's ConvNet on 100 images took 81.5 ms eager and 89.7 ms compiled (Xeon here). Never on
    CUDA, where compiling was a loss: 20 packed networks x 300 epochs took 23.9 s compiled against 12.5 s eager
    in fp32, 29.5 against 11.8 s in bf16 (H200, results/bench/cuda/2026-11-26/evaluate.csv): the cold compile
    costs more than a whole eager run. ``NASPROXY_COMPILE=0`` turns auto off (``=1`` forces it on), e.g. on
    machines without a C++ compiler."""
    if requested is None:
        requested = _env_choice("NASPROXY_COMPILE")
    if requested is not None:
        return requested
    return device.type == "cpu" and precision == "bf16" and work >= threshold


# An eager step of a small ConvNet on a GPU is launch-bound (~4 ms per step of the paper's ConvNet on 100
# images on an H200, a few hundred kernels): replaying the whole step (forward, backward, SGD) as one captured
# CUDA graph removes the launches. A capture costs about two eager steps plus the warm-up below.
CUDA_GRAPH_MIN_STEPS = 20
_CUDA_GRAPH_WARMUP = 2  # eager steps before the first capture: cuBLAS/cuDNN handles, momentum buffers


def use_cuda_graph(requested: bool | None, steps: int, device: torch.device, compiled: bool) -> bool:
    """Whether :func:`fit` replays its SGD steps as CUDA graphs: as requested on CUDA (never on CPUs, and never
    for a compiled network, whose guards run Python on every call that a replay would skip), else (auto) for
    fits of at least ``CUDA_GRAPH_MIN_STEPS`` steps. ``NASPROXY_CUDA_GRAPHS=0`` turns auto off (``=1`` forces
    it on)."""
    if device.type != "cuda" or compiled:
        return False
    if requested is None:
        requested = _env_choice("NASPROXY_CUDA_GRAPHS")
    if requested is not None:
        return requested
    return steps >= CUDA_GRAPH_MIN_STEPS


_graph_capture_broken = False


class _GraphedStep:
    """Runs ``step(idx)`` (one SGD step on the batch that ``idx`` selects, None: the whole set) eagerly for the
    warm-up, then as a replayed CUDA graph: ``idx`` is copied into the graph's own index tensor, and the
    returned loss is the graph's output tensor, overwritten by the next replay. Every ``idx`` must have the
    shape of the first. Anything baked into the capture (the learning rate) changes only through
    :meth:`reset`."""

    def __init__(self, step: Callable[[torch.Tensor | None], torch.Tensor]):
        self.step = step
        self.warmup_left = _CUDA_GRAPH_WARMUP
        self.side_stream: torch.cuda.Stream | None = None
        self.captured: tuple[torch.cuda.CUDAGraph, torch.Tensor | None, torch.Tensor] | None = None

    def reset(self) -> None:
        self.captured = None

    def __call__(self, idx: torch.Tensor | None) -> torch.Tensor:
        global _graph_capture_broken
        if _graph_capture_broken:
            return self.step(idx)
        if self.warmup_left > 0:
            # on a side stream, as PyTorch's capture recipe asks, so that lazily created state is not tied to
            # the default stream
            self.warmup_left -= 1
            self.side_stream = self.side_stream or torch.cuda.Stream()
            self.side_stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side_stream):
                loss = self.step(idx)
            torch.cuda.current_stream().wait_stream(self.side_stream)
            return loss
        if self.captured is None:
            static_idx = None if idx is None else idx.clone()
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):
                    static_loss = self.step(static_idx)
            except Exception as exc:  # an operation that cannot be captured (e.g. a host sync in a custom model)
                _graph_capture_broken = True
                warnings.warn(f"CUDA graph capture failed ({type(exc).__name__}: {exc}); running eagerly", stacklevel=2)
                return self.step(idx)
            self.captured = (graph, static_idx, static_loss)
        graph, static_idx, static_loss = self.captured
        if static_idx is not None:
            static_idx.copy_(idx)
        graph.replay()
        return static_loss


_compiled_graphs: set = set()
_compile_broken = False


def compiled(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``module`` compiled, falling back to eager (with one warning) where compiling fails, e.g. no compiler.

    Dynamo keeps at most a few compiled graphs per ``forward`` before silently running eager, so a process
    that trains hundreds of architectures resets its caches now and then (inductor's disk cache stays).
    """
    if _compile_broken:
        return module
    # inductor's C++ toolchain probe warns about a missing CUDA runtime even for CPU-only kernels
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, _DYNAMO_RECOMPILE_LIMIT)
    key = (type(module), repr(module), module.training)
    if key not in _compiled_graphs:
        if len(_compiled_graphs) >= _DYNAMO_MAX_GRAPHS:
            torch._dynamo.reset()
            _compiled_graphs.clear()
        _compiled_graphs.add(key)
    graph = torch.compile(module, dynamic=False)
    first = [True]

    def forward(x: torch.Tensor) -> torch.Tensor:
        global _compile_broken
        if _compile_broken:
            return module(x)
        if not first[0]:
            return graph(x)
        first[0] = False
        try:
            return graph(x)
        except Exception as exc:  # a backend failure; an error in the model itself recurs eagerly below
            _compile_broken = True
            warnings.warn(f"torch.compile failed ({type(exc).__name__}: {exc}); running eagerly", stacklevel=2)
            return module(x)

    return forward


# Packed networks run as grouped convolutions, which cuDNN runs far below its dense rate. NAS candidates on an
# H200 (5 networks x 100 steps + scoring, against the naive loop, results/bench/cuda/2026-11-26/
# candidate-20archs.csv): packed, networks of up to ~300 MFLOP per image forward ran 1.2-5.5x faster in fp32,
# those of 900-2,400 MFLOP 0.73-0.90x, i.e. slower than one at a time. With CUDA graphs (2026-11-27, bench/
# cuda/candidate-20archs.csv) packing still won over all 20 (24.9 against 26.9 s), though not for four
# networks of one block or without pooling.
CUDA_PACK_MAX_FLOPS = 500e6


def _cuda_packs(net: nn.Module) -> bool:
    """Whether ConvNets like ``net`` are packed on CUDA; ``NASPROXY_CUDA_PACK_MAX_FLOPS`` moves the limit
    (0: never pack), for benchmarks that compare the two."""
    limit = float(os.environ.get("NASPROXY_CUDA_PACK_MAX_FLOPS", CUDA_PACK_MAX_FLOPS))
    return getattr(net, "flops_per_image", 0) <= limit


def training_pack(config: TrainConfig, device: torch.device, net: nn.Module) -> int:
    """Networks like ``net`` packed per training module: ``config.pack`` if given; else 32 on CUDA for all but
    the heaviest networks (see ``CUDA_PACK_MAX_FLOPS``) and 1 on CPUs, where packing was never faster (bf16,
    eager, 5 networks x 100 images, ms per network-step, one vs packed: W128 D1 instance/max-pool 54.7 vs
    59.3, W128 D2 layer/max 122.3 vs 149.9, the paper's ConvNet 139.5 vs 140.2, W64 D2 group/max 47.0 vs
    47.2; compiled, 92 vs 97 for the paper's ConvNet)."""
    if config.pack is not None:
        return config.pack
    return MAX_PACK if device.type == "cuda" and _cuda_packs(net) else 1


def pack_limit(pack: int | None, device: torch.device, batch: int, net: nn.Module) -> int:
    """How many networks like ``net`` to pack when scoring: ``pack`` if given; else up to 32 on CUDA (not the
    heaviest networks, as in training), and on CPUs only for batches of at most 32 images: scoring packed
    networks in large CPU batches made NAS candidates slower. Training decides separately
    (:func:`training_pack`)."""
    if pack is not None:
        return pack
    if (device.type == "cuda" and _cuda_packs(net)) or (device.type == "cpu" and batch <= CPU_PACK_MAX_BATCH):
        return MAX_PACK
    return 1


def _packable(modules: Sequence[nn.Module]) -> bool:
    first = modules[0]
    return all(
        isinstance(m, ConvNet) and m.replicas == 1 and m.spec == first.spec and m.image_size == first.image_size
        for m in modules
    )


def _groups(modules: Sequence[nn.Module], pack: int) -> list[list[int]]:
    """Indices of modules trained together: runs of packable ConvNets of one spec, at most ``pack`` long."""
    if pack > 1 and len(modules) > 1 and _packable(modules):
        return [list(range(i, min(i + pack, len(modules)))) for i in range(0, len(modules), pack)]
    return [[i] for i in range(len(modules))]


def fit(
    modules: Sequence[nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    *,
    generators: Sequence[torch.Generator],
    progress: Callable[[int], None] | None = None,
    hook: EpochHook | None = None,
) -> FitStats:
    """Train ``modules`` in place with SGD on ``images``; module i shuffles with ``generators[i]``.

    Packed and one-by-one training give the same result up to float rounding (tests check this).
    """
    if len(generators) != len(modules):
        raise ValueError("fit needs one generator per module")
    prepare_device(images.device)
    stats = FitStats()
    if not modules:
        return stats
    n = len(images)
    planned_steps = config.epochs * math.ceil(n / min(config.batch_size, max(n, 1)))
    if config.max_steps is not None:
        planned_steps = min(planned_steps, config.max_steps)
    use_compiled = use_compile(
        config.compile, planned_steps * len(modules), COMPILE_MIN_STEPS, images.device, precision=config.precision
    )
    use_graph = use_cuda_graph(config.cuda_graph, planned_steps, images.device, use_compiled)
    for group in _groups(modules, training_pack(config, images.device, modules[0])):
        members = [modules[i] for i in group]
        packed = stack_convnets(members) if len(members) > 1 else members[0]
        steps = _fit_one(
            packed,
            len(members),
            images,
            labels,
            config,
            [generators[i] for i in group],
            progress,
            _group_hook(hook, group),
            use_compiled=use_compiled,
            use_graph=use_graph,
        )
        if len(members) > 1:
            for dst, src in zip(members, unstack_convnet(packed)):
                dst.load_state_dict(src.state_dict())
        stats.steps = max(stats.steps, steps)
    return stats


def _fit_one(
    module: nn.Module,
    replicas: int,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    generators: Sequence[torch.Generator],
    progress: Callable[[int], None] | None,
    hook: EpochHook | None,
    *,
    use_compiled: bool,
    use_graph: bool,
) -> int:
    device = images.device
    module.train()
    # the odd-sized last batch of an epoch runs eagerly rather than compiling (or capturing) a second graph
    fast = compiled(module) if use_compiled else module
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    n = len(images)
    bs = min(config.batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    whole_set = steps_per_epoch == 1  # every batch is the whole set: order cannot change the mean gradient

    def sgd_step(idx: torch.Tensor | None) -> torch.Tensor:
        """One step on the images that ``idx`` [M, b] selects for each replica (None: all of them)."""
        if idx is None:
            x, y = images, labels.unsqueeze(1).expand(n, replicas)
        else:
            x = images[idx].transpose(0, 1).flatten(1, 2)  # [b, M*C, H, W]: replica m reads its own images
            y = labels[idx].t()
        with autocast(config.precision, device, cache=not use_graph):
            out = fast(x) if len(x) == bs else module(x)
        out = out.float().reshape(len(x), replicas, -1)
        # sum over replicas of each replica's mean loss: each replica gets exactly its own gradient
        per_sample = F.cross_entropy(out.flatten(0, 1), y.reshape(-1), reduction="none").view(-1, replicas)
        loss = per_sample.mean(0)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        # detached: a live autograd graph would keep the parameters' gradient accumulators, and the stream
        # they were made on, into the next step (a stream mismatch, which PyTorch warns about, when that step
        # is the capture)
        return loss.detach()

    graphed = _GraphedStep(sgd_step) if use_graph else None
    decay_at = config.decay_steps(steps_per_epoch)
    step = 0
    for epoch in range(1, config.epochs + 1):
        if not whole_set:
            order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(device)
        for s in range(steps_per_epoch):
            if config.max_steps is not None and step >= config.max_steps:
                break
            if step in decay_at:
                for g in opt.param_groups:
                    g["lr"] *= config.lr_decay
                if graphed is not None:
                    graphed.reset()  # the captured steps hold the old learning rate
            idx = None if whole_set else order[:, s * bs : (s + 1) * bs]
            if graphed is not None and (idx is None or idx.shape[1] == bs):
                graphed(idx)
            else:
                sgd_step(idx)
            step += 1
        if progress is not None:
            progress(replicas)  # one epoch of every packed network
        if hook is not None and epoch in hook.epochs:
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # a replayed graph may still be writing the parameters
            hook.fn(epoch, range(replicas), unstack_convnet(module) if replicas > 1 else [module])
    return step


def _group_hook(hook: EpochHook | None, group: Sequence[int]) -> EpochHook | None:
    """``hook`` with the indices of one packed group translated back to ``fit``'s module indices."""
    if hook is None:
        return None
    return EpochHook(hook.epochs, lambda epoch, idx, nets: hook.fn(epoch, [group[i] for i in idx], nets))


def build_seeded(builder: Callable[[], nn.Module], seed: int, device: torch.device) -> nn.Module:
    """``builder()`` initialised from ``seed``, leaving the global random state as it was."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return builder().to(device)


def train_from_scratch(
    builder: Callable[[], nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    *,
    seeds: Sequence[int],
    progress: Callable[[int], None] | None = None,
    hook: EpochHook | None = None,
) -> list[nn.Module]:
    """Build one network per seed (the seed fixes its initialisation and its data order) and train them."""
    device = images.device
    modules = []
    for seed in seeds:
        modules.append(build_seeded(builder, seed, device))
    generators = [torch.Generator().manual_seed(seed + 1_000_003) for seed in seeds]
    fit(modules, images, labels, config, generators=generators, progress=progress, hook=hook)
    return modules


@torch.inference_mode()
def accuracy(
    modules: Sequence[nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    precision: str = "fp32",
    batch_size: int | None = None,
    pack: int | None = None,
    compile: bool | None = None,
) -> list[float]:
    """Top-1 accuracy of each module on ``images`` (eval mode; packed ConvNets share every batch of
    ``batch_size / number packed`` images; compiled when auto says the work pays for it)."""
    device = images.device
    prepare_device(device)
    if batch_size is None:
        batch_size = SCORE_BATCH_CUDA if device.type == "cuda" else SCORE_BATCH_CPU
    result: list[float] = [0.0] * len(modules)
    if not modules:
        return result
    use_compiled = use_compile(compile, len(images) * len(modules), COMPILE_MIN_SCORED, device, precision=precision)
    for group in _groups(modules, pack_limit(pack, device, batch_size, modules[0])):
        members = [modules[i] for i in group]
        packed = stack_convnets(members) if len(members) > 1 else members[0]
        was_training = packed.training
        packed.eval()
        correct = torch.zeros(len(members), device=device)
        step = max(16, batch_size // len(members))  # activations grow with the number of packed networks
        fast = compiled(packed) if use_compiled else packed
        for start in range(0, len(images), step):
            x = images[start : start + step]
            with autocast(precision, device):
                out = fast(x) if len(x) == step else packed(x)
            pred = out.reshape(len(x), len(members), -1).argmax(-1)
            correct += (pred == labels[start : start + step, None]).sum(0)
        packed.train(was_training)
        for i, c in zip(group, correct.tolist()):
            result[i] = c / len(images)
    return result
