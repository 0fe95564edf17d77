"""Model registry. ``build_model(name, ...)`` accepts a registered name or a ConvNet id such as
``convnet-w64-d2-batch-relu-max``; ``register_model`` adds a user's own."""

from __future__ import annotations

import re
from collections.abc import Callable

from torch import nn

from nasproxy._errors import NasproxyError
from nasproxy._registry import Registry
from nasproxy.models._convnet import (
    ConvNet,
    ConvNetSpec,
    per_replica,
    stack_convnets,
    unstack_convnet,
)
from nasproxy.models._zoo import MLP, VGG11, AlexNet, LeNet, ResNet18

ModelBuilder = Callable[..., nn.Module]  # (channels=, num_classes=, image_size=) -> module
MODELS: Registry[ModelBuilder] = Registry("model")

_CONVNET_ID = re.compile(r"^convnet-w(\d+)-d(\d+)-([a-z]+)-([a-z]+)-([a-z]+)$")


def register_model(name: str, builder: ModelBuilder | None = None):
    """Register ``builder(channels=, num_classes=, image_size=)`` under ``name`` (decorator or call)."""
    return MODELS.register(name, builder)


def convnet_builder(spec: ConvNetSpec) -> ModelBuilder:
    def build(*, channels: int, num_classes: int, image_size: tuple[int, int]) -> ConvNet:
        return ConvNet(spec, channels=channels, num_classes=num_classes, image_size=image_size)

    build.spec = spec  # lets the engine pack several networks of one spec into one module
    return build


def parse_convnet_id(name: str) -> ConvNetSpec | None:
    match = _CONVNET_ID.match(name)
    if not match:
        return None
    w, d, norm, act, pool = match.groups()
    return ConvNetSpec(width=int(w), depth=int(d), norm=norm, act=act, pool=pool)


def model_builder(name: str) -> ModelBuilder:
    spec = parse_convnet_id(name)
    if spec is not None:
        return convnet_builder(spec)
    if name not in MODELS and name.startswith("convnet-"):
        raise NasproxyError(
            f"{name!r} is not a ConvNet id; write convnet-w<W>-d<D>-<norm>-<act>-<pool>, "
            "e.g. convnet-w128-d3-instance-relu-avg"
        )
    return MODELS.get(name)


def build_model(name: str, *, channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    return model_builder(name)(channels=channels, num_classes=num_classes, image_size=image_size)


def _adapt(cls, **fixed) -> ModelBuilder:
    def build(*, channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
        return cls(channels, num_classes, tuple(image_size), **fixed)

    return build


register_model("convnet", convnet_builder(ConvNetSpec()))
register_model("convnet-bn", convnet_builder(ConvNetSpec(norm="batch")))
register_model("mlp", _adapt(MLP))
register_model("lenet", _adapt(LeNet))
register_model("alexnet", _adapt(AlexNet))
register_model("alexnet-bn", _adapt(AlexNet, norm="batch"))
register_model("vgg11", _adapt(VGG11))
register_model("vgg11-bn", _adapt(VGG11, norm="batch"))
register_model("resnet18", _adapt(ResNet18))
register_model("resnet18-bn", _adapt(ResNet18, norm="batch"))

__all__ = [
    "MODELS",
    "ConvNet",
    "ConvNetSpec",
    "build_model",
    "convnet_builder",
    "model_builder",
    "parse_convnet_id",
    "per_replica",
    "register_model",
    "stack_convnets",
    "unstack_convnet",
]
