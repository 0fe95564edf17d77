"""Acceleration policies: when to compile, when to replay CUDA graphs, how many networks to pack."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn

from nasproxy._configs import TrainConfig
from nasproxy.backends import prepare_compile
from nasproxy.models import ConvNet

CPU_PACK_MAX_BATCH = 32
# Scoring batch: on CPUs a large batch's activations (1 GB per ConvNet layer at 2,048 images) ran slower per
# image than 256 (results/bench/engine-choices.md); a GPU wants large batches.
SCORE_BATCH_CPU = 256
SCORE_BATCH_CUDA = 2048
MAX_PACK = 32
# A cold compile of a ConvNet's training step pays only after a few hundred steps, and every new
# architecture compiles cold (results/bench/engine-choices.md, "torch.compile").
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
    pay for it. Not in fp32 on CPUs, where the CPU backend's kernels left the compiler nothing to gain, and
    never on CUDA, where the cold compile cost more than a whole eager run (results/bench/engine-choices.md,
    "torch.compile"). ``NASPROXY_COMPILE=0`` turns auto off (``=1`` forces it on), e.g. on
    machines without a C++ compiler."""
    if requested is None:
        requested = _env_choice("NASPROXY_COMPILE")
    if requested is not None:
        return requested
    return device.type == "cpu" and precision == "bf16" and work >= threshold


# An eager step of a small ConvNet on a GPU is launch-bound (a few hundred kernels): replaying the whole step
# (forward, backward, SGD) as one captured CUDA graph removes the launches. A capture costs about two eager
# steps plus the warm-up below.
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
_cache_reset_allowed = False


def allow_compile_cache_reset() -> None:
    """Let :func:`compiled` keep more graphs per code object and reset dynamo's caches (process-wide) when
    a long search has compiled more than ``_DYNAMO_MAX_GRAPHS`` networks."""
    global _cache_reset_allowed
    # dynamo's limit is raised at the first compile: importing torch._dynamo costs every process as much as
    # importing torch, and a CPU run in fp32 never compiles
    _cache_reset_allowed = True


def compiled(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``module`` compiled, falling back to eager (with one warning) where compiling fails, e.g. no compiler.

    Dynamo keeps at most a few compiled graphs per ``forward`` before silently running eager, so a process
    that trains hundreds of architectures resets its caches now and then (inductor's disk cache stays), if
    it allowed that (:func:`allow_compile_cache_reset`, part of ``configure_process``).
    """
    if _compile_broken:
        return module
    # inductor's C++ toolchain probe warns about a missing CUDA runtime even for CPU-only kernels
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    key = (type(module), repr(module), module.training)
    if _cache_reset_allowed:
        limit = torch._dynamo.config.recompile_limit
        torch._dynamo.config.recompile_limit = max(limit, _DYNAMO_RECOMPILE_LIMIT)
        if key not in _compiled_graphs:
            if len(_compiled_graphs) >= _DYNAMO_MAX_GRAPHS:
                torch._dynamo.reset()
                _compiled_graphs.clear()
            _compiled_graphs.add(key)
    prepare_compile()
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


# Packed networks run as grouped convolutions, which cuDNN runs far below its dense rate: packing pays only
# for small networks (results/bench/engine-choices.md, "packing on CUDA").
CUDA_PACK_MAX_FLOPS = 500e6


def _cuda_packs(net: nn.Module) -> bool:
    """Whether ConvNets like ``net`` are packed on CUDA; ``NASPROXY_CUDA_PACK_MAX_FLOPS`` moves the limit
    (0: never pack), for benchmarks that compare the two."""
    limit = float(os.environ.get("NASPROXY_CUDA_PACK_MAX_FLOPS", CUDA_PACK_MAX_FLOPS))
    return getattr(net, "flops_per_image", 0) <= limit


def training_pack(config: TrainConfig, device: torch.device, net: nn.Module) -> int:
    """Networks like ``net`` packed per training module: ``config.pack`` if given; else 32 on CUDA for all but
    the heaviest networks (see ``CUDA_PACK_MAX_FLOPS``) and 1 on CPUs, where packing was never faster
    (results/bench/engine-choices.md, "packing on CPUs")."""
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
