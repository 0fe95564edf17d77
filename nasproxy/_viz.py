"""Figures. Plot functions return a matplotlib Figure; callers save it (atomically, via :func:`save_figure`)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from nasproxy._artifact import CondensedSet, _atomic


def image_grid(condensed: CondensedSet, *, max_per_class: int = 10, class_names: list[str] | None = None):
    """A condensed set's images, one row per class, de-normalised (the paper's Figure 2 style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean = torch.tensor(condensed.meta.get("mean", [0.0] * condensed.images.shape[1])).view(1, -1, 1, 1)
    std = torch.tensor(condensed.meta.get("std", [1.0] * condensed.images.shape[1])).view(1, -1, 1, 1)
    images = (condensed.images * std + mean).clamp(0, 1)
    classes = sorted(set(condensed.labels.tolist()))
    cols = min(max_per_class, max(int((condensed.labels == c).sum()) for c in classes))
    fig, axes = plt.subplots(len(classes), cols, figsize=(cols * 0.9 + 1.2, len(classes) * 0.9), squeeze=False)
    for row, c in enumerate(classes):
        members = images[condensed.labels == c][:cols]
        for col in range(cols):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if col < len(members):
                img = members[col].permute(1, 2, 0).numpy()
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
        axes[row][0].set_ylabel(class_names[c] if class_names else str(c), rotation=0, ha="right", va="center")
    meta = condensed.meta
    fig.suptitle(
        f"{meta.get('dataset', '?')} · {meta.get('method', '?')} · {meta.get('ipc', '?')} img/class", fontsize=9
    )
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Save atomically; the format follows the suffix (.png, .pdf, .svg)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    # no creation date in PDFs: the same figure gives the same bytes
    metadata = {"CreationDate": None} if fmt == "pdf" else None
    with _atomic(path, "wb") as f:
        fig.savefig(f, format=fmt, dpi=150, bbox_inches="tight", metadata=metadata)
    return path
