"""Model families that grid spaces (and YAML files) enumerate over. Register a new one in a single file."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from nasproxy._errors import NasproxyError
from nasproxy._registry import Registry
from nasproxy.models import ConvNet, ConvNetSpec


@dataclass(frozen=True)
class Family:
    axes: tuple[str, ...]
    spec: Callable[[Mapping[str, Any]], Any]  # validates an architecture; raises NasproxyError
    arch_id: Callable[[Mapping[str, Any]], str]
    build: Callable[..., nn.Module]


FAMILIES: Registry[Family] = Registry("model family")


def _convnet_spec(arch: Mapping[str, Any]) -> ConvNetSpec:
    try:
        return ConvNetSpec(**arch)
    except TypeError as exc:
        raise NasproxyError(f"bad ConvNet architecture {dict(arch)}: {exc}") from None


FAMILIES.register(
    "convnet",
    Family(
        axes=("width", "depth", "norm", "act", "pool"),
        spec=_convnet_spec,
        arch_id=lambda arch: _convnet_spec(arch).arch_id,
        build=lambda arch, **shape: ConvNet(_convnet_spec(arch), **shape),
    ),
)
