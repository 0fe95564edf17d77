"""The condensed set: one file with the synthetic (or selected) images, their labels and full provenance."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nasproxy._configs import SplitSpec
from nasproxy._errors import ArtifactError, IncompatibleError, setting

FORMAT = "nasproxy-proxy"  # the format's name from before "condensed set"; files keep it
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CondensedSet:
    """What ``nasproxy condense`` writes (a condensed set): a few labelled images per class, learned (DC, DSA,
    DM) or selected (random, herding, ...), with their provenance. The proxies named after condensers train
    on one."""

    images: torch.Tensor  # [N, C, H, W], in the dataset's normalised space
    labels: torch.Tensor  # [N] int64
    meta: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable provenance

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def split_spec(self) -> SplitSpec:
        """The hold-out the set was made with (so that every later step uses the same one)."""
        return SplitSpec(
            holdout=self.meta.get("holdout", SplitSpec.holdout), seed=self.meta.get("split_seed", SplitSpec.seed)
        )

    @property
    def num_classes(self) -> int:
        return int(self.meta.get("num_classes", int(self.labels.max()) + 1))

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        atomic_torch_save(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "images": self.images.detach().cpu().contiguous(),
                "labels": self.labels.detach().cpu().long().contiguous(),
                "meta_json": json.dumps(self.meta, sort_keys=True),
            },
            path,
        )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> CondensedSet:
        path = Path(path)
        if not path.exists():
            raise ArtifactError(f"condensed set {path} does not exist; create one with `nasproxy condense`")
        try:
            with warnings.catch_warnings():  # torch's own remarks on a foreign file would precede our one line
                warnings.simplefilter("ignore")
                blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - unreadable for any reason is the same to the user
            raise ArtifactError(
                f"{path} is not a readable nasproxy condensed set ({exc.__class__.__name__}); "
                "re-create it with `nasproxy condense`"
            ) from None
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ArtifactError(f"{path} is not a nasproxy condensed set; create one with `nasproxy condense`")
        if blob.get("format_version", 0) > FORMAT_VERSION:
            raise ArtifactError(f"{path} was written by a newer nasproxy; upgrade nasproxy to read it")
        images, labels = blob.get("images"), blob.get("labels")
        if (
            not (isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor))
            or images.dim() != 4
            or len(images) != len(labels)
        ):
            raise ArtifactError(f"{path} is damaged (images and labels do not match); re-create it")
        try:
            meta = json.loads(blob.get("meta_json", "{}"))
        except json.JSONDecodeError:
            raise ArtifactError(f"{path} has damaged metadata; re-create it") from None
        return cls(images=images, labels=labels.long(), meta=meta)

    def check_compatible(self, dataset) -> None:
        """Raise unless this set was made from ``dataset`` with the same validation hold-out."""
        if self.meta.get("dataset") not in (None, dataset.name):
            raise IncompatibleError(
                f"the condensed set was made from {self.meta['dataset']!r}, not {dataset.name!r}; pass "
                f"{setting('dataset')} {self.meta['dataset']} or use a condensed set of {dataset.name}"
            )
        if self.image_shape != dataset.image_shape:
            raise IncompatibleError(
                f"the condensed set's images are {list(self.image_shape)} but {dataset.name}'s are "
                f"{list(dataset.image_shape)}"
            )
        fp = self.meta.get("val_fingerprint")
        if fp is not None and fp != dataset.val_fingerprint:
            raise IncompatibleError(
                "the condensed set was made with another validation hold-out "
                f"(holdout={self.meta.get('holdout')}, split seed={self.meta.get('split_seed')}); "
                f"pass the same {setting('holdout')} and {setting('split_seed')}"
            )


def check_writable(path: str | os.PathLike, *, what: str) -> Path:
    """Fail now, with one line, if the file ``path`` could not be written later (its folder cannot be made,
    is read-only, or lies beneath a file), so that no work is done for a result that cannot be saved."""
    path = Path(path)
    if path.is_dir():
        raise ArtifactError(f"{what} {path} is a folder; pass a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise ArtifactError(f"cannot write {what} {path} ({reason}); choose a writable location") from None
    return path


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write next to ``path`` and rename, so a crash never leaves a half-written file behind."""
    with _atomic(path, "wb") as f:
        torch.save(obj, f)


def atomic_write_text(path: Path, text: str) -> None:
    with _atomic(path, "w") as f:
        f.write(text)


@contextlib.contextmanager
def _atomic(path: Path, mode: str):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make shared results unreadable to others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
