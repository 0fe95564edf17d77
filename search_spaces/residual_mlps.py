"""An example search space written in Python: use it as ``--space search_spaces/residual_mlps.py:ResidualMLPs``.

A YAML file covers grids of a registered family (see ``paper720.yaml``); a Python space covers anything else.
Subclass ``nasproxy.SearchSpace`` and give it a name, the architectures (plain dicts of JSON values: they
are stored with every trial and name it, e.g. ``depth=2,hidden=64``) and a ``build`` that makes a fresh,
randomly initialised ``nn.Module`` for one of them. nasproxy trains it with its one training engine, so a
search on any proxy, the ground truth and ``nasproxy report`` work as for the built-in ConvNets.
"""

from itertools import product

from torch import nn

from nasproxy import SearchSpace


class ResidualMLPs(SearchSpace):
    name = "residual-mlps"

    def architectures(self):
        # every combination, in a fixed order: a seeded --sample draws from this order
        for depth, hidden in product((1, 2, 4), (64, 256)):
            yield {"depth": depth, "hidden": hidden}

    def build(self, arch, *, channels, num_classes, image_size):
        height, width = image_size
        return _ResidualMLP(channels * height * width, arch["hidden"], arch["depth"], num_classes)


class _ResidualMLP(nn.Module):
    def __init__(self, inputs: int, hidden: int, depth: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Linear(inputs, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.ReLU()) for _ in range(depth)
        )
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = self.stem(x.flatten(1))
        for block in self.blocks:
            x = x + block(x)  # residual: deeper variants train as easily as shallow ones
        return self.head(x)
