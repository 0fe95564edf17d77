"""The paper's other architectures for cross-architecture evaluation (appendix A of Zhao et al. 2021).

Instance-norm variants are the defaults for training on a few images; ``-bn`` variants use BatchNorm.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


class MLP(nn.Module):
    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        h, w = image_size
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * h * w, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, num_classes),
        )

    def forward(self, x):
        return self.net(x)


def _conv_out(size: int, kernel: int, pad: int) -> int:
    return size + 2 * pad - kernel + 1


class LeNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        pad = 2 if channels == 1 else 0
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=pad),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
        )
        s = _conv_out(_conv_out(image_size[0], 5, pad) // 2, 5, 0) // 2
        self.classifier = nn.Sequential(
            nn.Linear(16 * s * s, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class AlexNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int], norm: str = "none") -> None:
        super().__init__()
        pad = 4 if channels == 1 else 2
        layers: list[nn.Module] = []
        plan = [
            (channels, 128, 5, pad, True),
            (128, 192, 5, 2, True),
            (192, 256, 3, 1, False),
            (256, 192, 3, 1, False),
            (192, 192, 3, 1, True),
        ]
        size = image_size[0]
        for cin, cout, k, p, pool in plan:
            layers += [nn.Conv2d(cin, cout, k, padding=p), _norm(norm, cout), nn.ReLU(inplace=True)]
            size = _conv_out(size, k, p)
            if pool:
                layers.append(nn.MaxPool2d(2, 2))
                size //= 2
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(192 * size * size, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


class VGG11(nn.Module):
    PLAN = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")

    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int], norm: str = "instance") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin, size = channels, image_size[0]
        for i, v in enumerate(self.PLAN):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                size //= 2
            else:
                pad = 3 if channels == 1 and i == 0 else 1
                layers += [nn.Conv2d(cin, v, 3, padding=pad), _norm(norm, v), nn.ReLU(inplace=True)]
                size = _conv_out(size, 3, pad)
                cin = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512 * size * size, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = _norm(norm, cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), _norm(norm, cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int], norm: str = "instance") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 64, 3, padding=1, bias=False)
        self.bn1 = _norm(norm, 64)
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [_BasicBlock(cin, cout, stride, norm), _BasicBlock(cout, cout, 1, norm)]
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))
