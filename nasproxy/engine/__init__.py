"""The one way nasproxy trains and scores networks.

Evaluation, NAS candidates, the early-stopping and full-data baselines and the condenser's inner network
updates all go through :func:`fit` (train given modules in place) or :func:`train_from_scratch` (build
seeded networks, train them, return them), and :func:`accuracy` for scoring.

What makes it fast, each switchable: tensors stay in memory (no DataLoader); on CUDA several ConvNets of one
spec (all but the heaviest) are packed into one replicated module and trained and scored together (on CPUs
only small scoring batches pack); when a training set fits into one batch every replica shares the same
input, so the first conv is one dense conv; optional bf16 autocast; on CPUs in bf16 ``torch.compile`` of
the network for long runs; long CUDA training calls replay each SGD step as a captured CUDA graph; and each
network runs on a backend (``TrainConfig.backend``, :mod:`nasproxy.backends`), on CPUs nasproxy's C++
kernels by default. Process-wide settings (glibc's allocator, denormals, cuDNN determinism) are not changed
by training: call :func:`configure_process` once, as the CLI does.

Layout: ``_hooks`` (looking at a run part-way, what it reports), ``_device`` (devices, precision, process
settings), ``_accel`` (when to compile, capture, pack), ``_train`` (the loop), ``_checkpoint`` (resuming
it), ``_score`` (accuracy).
"""

from nasproxy._configs import PRECISIONS, TrainConfig
from nasproxy.engine._accel import COMPILE_MIN_STEPS, compiled, pack_limit, training_pack, use_compile, use_cuda_graph
from nasproxy.engine._checkpoint import Checkpoint
from nasproxy.engine._device import (
    autocast,
    configure_process,
    device_name,
    flush_denormals,
    resolve_device,
    tune_allocator,
)
from nasproxy.engine._hooks import EpochHook, FitStats, StepHook
from nasproxy.engine._score import accuracy
from nasproxy.engine._sgd import SGD
from nasproxy.engine._train import build_seeded, fit, train_from_scratch

__all__ = [
    "COMPILE_MIN_STEPS",
    "SGD",
    "Checkpoint",
    "PRECISIONS",
    "EpochHook",
    "FitStats",
    "StepHook",
    "TrainConfig",
    "accuracy",
    "autocast",
    "build_seeded",
    "compiled",
    "configure_process",
    "device_name",
    "fit",
    "flush_denormals",
    "pack_limit",
    "resolve_device",
    "train_from_scratch",
    "training_pack",
    "tune_allocator",
    "use_compile",
    "use_cuda_graph",
]
