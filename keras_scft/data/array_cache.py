"""Decoded training images kept on disk, so that a second run of a recipe skips decoding.

Decoding and resizing a few thousand PNGs takes seconds (6 s for OpenMoji's 3,242 training
pairs on 2 cores); reading them back from ``.npy`` files takes a fraction of that.
An entry is keyed by what the arrays depend on: the source's files (path, size, modification
time), their order, the image size, the limit and :data:`FORMAT`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from keras_scft.data.pipeline import load_arrays
from keras_scft.data.sources import ImageSource
from keras_scft.utils.paths import cache_dir

# Bump when reading, cropping or resizing changes what load_arrays returns for the same files.
FORMAT = 1


def arrays_key(source: ImageSource, image_size: int, limit: int | None) -> str:
    """Hex digest naming the cache entry of ``load_arrays(source, image_size, limit)``."""
    # abspath, not resolve(): no system call per path component (half the cached load's time).
    digest = hashlib.sha256(json.dumps({
        "format": FORMAT, "source": type(source).__name__, "image_size": int(image_size), "limit": limit,
        "order": [os.path.abspath(p) for p in source.paths],
    }).encode())
    for path in source.files:
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def load_arrays_cached(source: ImageSource, image_size: int, limit: int | None = None,
                       progress: bool = True, folder: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """:func:`~keras_scft.data.pipeline.load_arrays`, through a cache of its result.

    ``folder`` defaults to ``<keras_scft cache>/arrays`` (``$KERAS_SCFT_CACHE``); an entry is a
    folder of one ``.npy`` per array. A missing or damaged entry is (re)built; an entry is
    written whole or not at all (temporary folder, then rename), so concurrent runs never read
    a partial one. A cache that cannot be written (read-only, disk full) costs only the next
    run's time: a warning, and the arrays.
    """
    try:
        folder = Path(folder) if folder is not None else cache_dir("arrays")
    except OSError as error:
        warnings.warn(f"could not cache the decoded training images: {error}", stacklevel=2)
        return load_arrays(source, image_size, limit, progress)
    entry = folder / arrays_key(source, image_size, limit)
    expected = {"image", "sketch"} if source.has_sketch else {"image"}
    if entry.is_dir():
        try:
            cached = {path.stem: np.load(path) for path in entry.glob("*.npy")}
        except (OSError, ValueError, EOFError):
            cached = {}
        if set(cached) == expected:
            return cached
        shutil.rmtree(entry, ignore_errors=True)  # damaged: rebuilt below
    arrays = load_arrays(source, image_size, limit, progress)
    temporary = folder / f".{entry.name}.{os.getpid()}.tmp"
    try:
        temporary.mkdir(parents=True)
        for name, array in arrays.items():
            np.save(temporary / f"{name}.npy", array)
        os.replace(temporary, entry)
    except OSError as error:
        if not entry.is_dir():  # (else another run wrote the same entry first)
            warnings.warn(f"could not cache the decoded training images in {folder}: {error}", stacklevel=2)
    shutil.rmtree(temporary, ignore_errors=True)
    return arrays

