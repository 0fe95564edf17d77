"""What a sweep will cost, from each architecture's FLOPs and this device's measured training speed."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nasproxy.spaces import Candidate, SearchSpace


def forward_flops(build: Callable[[], nn.Module], shape: tuple[int, int, int]) -> int:
    """FLOPs of one forward pass of one image, counted on shape-only tensors where the builder allows."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with torch.device("meta"):
            net = build()
            with FlopCounterMode(display=False) as counter:
                net(torch.zeros(1, *shape))
    except Exception:  # noqa: BLE001 - builders that cannot run on meta tensors
        net = build()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net(torch.zeros(1, *shape))
    return int(counter.get_total_flops())


def forward_activations(build: Callable[[], nn.Module], shape: tuple[int, int, int]) -> int:
    """Elements every layer of one forward pass of one image outputs: the element-wise work (norms,
    activations, pooling) that FLOPs leave out, counted on shape-only tensors where the builder allows."""
    total = [0]

    def count(module, inputs, output):
        if not list(module.children()) and isinstance(output, torch.Tensor):
            total[0] += output[:1].numel()

    for device in ("meta", "cpu"):
        total[0] = 0
        try:
            with torch.device(device):
                net = build()
            handle = torch.nn.modules.module.register_module_forward_hook(count)
            try:
                with torch.no_grad():
                    net(torch.zeros(1, *shape, device=device))
            finally:
                handle.remove()
            return total[0]
        except Exception:  # noqa: BLE001 - builders that cannot run on meta tensors: count on the CPU
            continue
    return 0


def candidate_flops(space: SearchSpace, cand: Candidate, shape: tuple[int, int, int], num_classes: int) -> int:
    c, h, w = shape
    return forward_flops(lambda: space.build(cand.spec, channels=c, num_classes=num_classes, image_size=(h, w)), shape)


# A process that prices search after search (the API in a loop, a notebook, a test suite) times the machine
# once per this many seconds: the timing costs seconds (more than a small sweep trains), and a sweep's price
# is re-fitted to its own architectures as they finish anyway.
SPEED_REUSED_SECONDS = 600.0
_speeds: dict[tuple, tuple[float, float]] = {}


def measured_flops_per_second(runtime, shape: tuple[int, int, int], num_classes: int, precision: str = "fp32") -> float:
    """Training FLOP/s of the paper's ConvNet here (3 x forward FLOPs per image per step), on ``runtime``'s
    device and backend; a timing of the same setting in this process in the last ``SPEED_REUSED_SECONDS``
    is reused."""
    key = (str(runtime.device), runtime.backend, tuple(shape), num_classes, precision, torch.get_num_threads())
    now = time.monotonic()
    if key in _speeds and now - _speeds[key][1] < SPEED_REUSED_SECONDS:
        return _speeds[key][0]
    speed = _timed_flops_per_second(runtime, shape, num_classes, precision)
    _speeds[key] = (speed, now)
    return speed


def _timed_flops_per_second(runtime, shape: tuple[int, int, int], num_classes: int, precision: str) -> float:
    from nasproxy.backends import apply_backend
    from nasproxy.engine import SGD, autocast
    from nasproxy.models import build_model

    device = runtime.device
    c, h, w = shape
    net = build_model("convnet", channels=c, num_classes=num_classes, image_size=(h, w)).to(device)
    apply_backend(net, runtime.backend)
    x = torch.randn(128, c, h, w, device=device)
    y = torch.randint(0, num_classes, (128,), device=device)
    opt = SGD(net.parameters(), lr=0.01)

    def step():
        with autocast(precision, device):
            loss = F.cross_entropy(net(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / 3
    build = lambda: build_model("convnet", channels=c, num_classes=num_classes, image_size=(h, w))  # noqa: E731
    return 3 * 128 * forward_flops(build, shape) / seconds


def measured_step_seconds(runtime, shape: tuple[int, int, int], num_classes: int) -> float:
    """Seconds of one SGD step of a minimal ConvNet on 8 images: the fixed cost every training step pays."""
    from nasproxy.backends import apply_backend
    from nasproxy.engine import SGD
    from nasproxy.models import build_model

    device = runtime.device
    c, h, w = shape
    net = build_model("convnet-w8-d1-none-relu-none", channels=c, num_classes=num_classes, image_size=(h, w))
    net = apply_backend(net.to(device), runtime.backend)
    x = torch.randn(8, c, h, w, device=device)
    y = torch.randint(0, num_classes, (8,), device=device)
    opt = SGD(net.parameters(), lr=0.01, momentum=0.9)
    times = []
    for _ in range(6):
        start = time.perf_counter()
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]
