"""Where nasproxy keeps what it can recompute but should not have to: trained selection networks and the
checkpoints of interrupted training. ``$NASPROXY_CACHE``, else ``~/.cache/nasproxy``; safe to delete."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("NASPROXY_CACHE") or Path.home() / ".cache" / "nasproxy")
