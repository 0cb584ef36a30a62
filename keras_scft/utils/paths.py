"""Where keras_scft keeps files it derives once and reuses (converted weights, fetched archives)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the keras_scft cache.

    The cache root is ``$KERAS_SCFT_CACHE`` if set, else ``$XDG_CACHE_HOME/keras_scft``,
    else ``~/.cache/keras_scft``.
    """
    root = os.environ.get("KERAS_SCFT_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        root = os.path.join(xdg, "keras_scft")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
