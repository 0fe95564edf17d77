"""Search spaces: a finite, ordered set of architectures and a way to build each one.

A user's space subclasses :class:`SearchSpace` and implements ``architectures`` and ``build``; grid spaces
over a registered model family come from :class:`GridSpace` (and YAML files).
"""

from __future__ import annotations

import itertools
import random
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nasproxy._errors import NasproxyError


@dataclass(frozen=True)
class Candidate:
    """One architecture of a space: a deterministic id and its JSON-serialisable description."""

    arch_id: str
    arch: tuple[tuple[str, Any], ...]  # sorted (key, value) pairs

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.arch)


class SearchSpace(ABC):
    """Subclass and implement :meth:`architectures` and :meth:`build`; set ``name``."""

    name: str = "unnamed"

    @abstractmethod
    def architectures(self) -> Iterable[Mapping[str, Any]]:
        """Every architecture as a dict of JSON-serialisable values, in a fixed order."""

    @abstractmethod
    def build(
        self, arch: Mapping[str, Any], *, channels: int, num_classes: int, image_size: tuple[int, int]
    ) -> nn.Module:
        """A freshly initialised network for ``arch`` (the caller seeds the global RNG)."""

    def arch_id(self, arch: Mapping[str, Any]) -> str:
        return "-".join(f"{k}={arch[k]}" for k in sorted(arch))

    # --- derived; no need to override ---------------------------------------------------------------------

    def candidates(self) -> list[Candidate]:
        if not hasattr(self, "_candidates"):
            found: dict[str, Candidate] = {}
            for arch in self.architectures():
                cand = Candidate(self.arch_id(arch), tuple(sorted(dict(arch).items())))
                found.setdefault(cand.arch_id, cand)
            self._candidates = list(found.values())
        return self._candidates

    def __len__(self) -> int:
        return len(self.candidates())

    def get(self, arch_id: str) -> Candidate:
        for cand in self.candidates():
            if cand.arch_id == arch_id:
                return cand
        raise NasproxyError(f"architecture {arch_id!r} is not in space {self.name!r}")

    def sample(self, n: int, *, seed: int) -> list[Candidate]:
        """A seeded random sample of ``n`` architectures (all of them if ``n`` >= size), in space order."""
        cands = self.candidates()
        if n >= len(cands):
            return list(cands)
        chosen = set(random.Random(seed).sample(range(len(cands)), n))
        return [c for i, c in enumerate(cands) if i in chosen]

    def describe(self) -> dict[str, Any]:
        """What is saved with a study so that a resumed search uses exactly the same space."""
        return {"name": self.name, "size": len(self), "architectures": [c.arch_id for c in self.candidates()]}

    def validate(self, *, channels: int, num_classes: int, image_size: tuple[int, int]) -> None:
        """Raise a clear error if the space is empty or some architecture cannot take these images.

        Every architecture is built and run on shape-only ``meta`` tensors (no memory, no arithmetic); a
        builder that cannot run on ``meta`` is checked on the CPU instead."""
        cands = self.candidates()
        if not cands:
            raise NasproxyError(f"search space {self.name!r} has no architectures")
        shape = {"channels": channels, "num_classes": num_classes, "image_size": image_size}
        for cand in cands:
            try:
                try:
                    self._probe(cand, torch.device("meta"), shape)
                except NasproxyError:
                    raise
                except Exception:  # noqa: BLE001 - not every builder supports meta tensors
                    self._probe(cand, torch.device("cpu"), shape)
            except NasproxyError as exc:
                raise NasproxyError(f"space {self.name!r}, architecture {cand.arch_id}: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - a user's builder may fail in any way
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
                raise NasproxyError(
                    f"space {self.name!r} cannot build {cand.arch_id} for images {[channels, *image_size]}: {detail}"
                ) from None

    def _probe(self, cand: Candidate, device: torch.device, shape: dict) -> None:
        with device:
            net = self.build(cand.spec, **shape)
            out = net.eval()(torch.zeros(2, shape["channels"], *shape["image_size"]))
        if tuple(out.shape) != (2, shape["num_classes"]):
            raise ValueError(f"it returns shape {list(out.shape)}, expected [2, {shape['num_classes']}]")


class GridSpace(SearchSpace):
    """Every combination of ``axes`` values of a registered model family (e.g. ``convnet``)."""

    def __init__(self, name: str, *, family: str, axes: Mapping[str, list], fixed: Mapping[str, Any] | None = None):
        from nasproxy.spaces._families import FAMILIES

        self.name = name
        self.family_name = family
        self.family = FAMILIES.get(family)
        self.axes = {k: list(v) for k, v in axes.items()}
        self.fixed = dict(fixed or {})
        if not self.axes:
            raise NasproxyError(f"space {name!r} has no axes")
        for axis, values in self.axes.items():
            if not values:
                raise NasproxyError(f"space {name!r}: axis {axis!r} has no values")
        unknown = sorted(set(self.axes) | set(self.fixed) - set(self.family.axes))
        unknown = [a for a in unknown if a not in self.family.axes]
        if unknown:
            raise NasproxyError(
                f"space {name!r}: family {family!r} has no axis {', '.join(map(repr, unknown))}; "
                f"its axes are {', '.join(self.family.axes)}"
            )
        for arch in self.architectures():  # unknown values fail here, before any training
            self.family.spec(arch)

    def architectures(self):
        keys = list(self.axes)
        for values in itertools.product(*(self.axes[k] for k in keys)):
            yield {**self.fixed, **dict(zip(keys, values))}

    def arch_id(self, arch):
        return self.family.arch_id(arch)

    def build(self, arch, *, channels, num_classes, image_size):
        return self.family.build(arch, channels=channels, num_classes=num_classes, image_size=image_size)

    def describe(self):
        return {**super().describe(), "family": self.family_name, "axes": self.axes, "fixed": self.fixed}
