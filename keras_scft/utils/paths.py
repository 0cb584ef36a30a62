"""Where keras_scft keeps files it derives once and reuses (converted weights, fetched archives)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
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


def files_digest(paths: Iterable[str | os.PathLike]) -> str:
    """SHA-256 hex digest of the files' names and contents, in the given order: names cache
    entries that go stale when source files change."""
    digest = hashlib.sha256()
    for path in map(Path, paths):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
