"""Decoded training images and the validation set kept on disk, so that a second run of a
recipe skips decoding and augmenting them.

Decoding and resizing a few thousand PNGs takes seconds (6 s for OpenMoji's 3,242 training
pairs on 2 cores); the ``.npy`` files are mapped back read-only (no read up front). Building
the 64 augmented validation examples takes a second more (JAX, 2 cores).
An entry is keyed by what its arrays depend on: for images, the source's files (path, size,
modification time), their order, the image size, the limit and :data:`FORMAT`; for the
validation set, the images themselves, the augmentation's settings, the source code that
builds the examples, the count, the seed and the backend.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from keras_scft.data.pipeline import EXAMPLE_INPUTS, EXAMPLE_TARGETS, load_arrays, validation_examples
from keras_scft.data.sources import ImageSource
from keras_scft.utils.paths import cache_dir, files_digest

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


def _cached(folder: str | os.PathLike | None, key: str, expected: set[str],
            build: Callable[[], dict[str, np.ndarray]], what: str) -> dict[str, np.ndarray]:
    """The arrays of entry ``key`` (one ``.npy`` per name in ``expected``) under ``folder``
    (default ``<keras_scft cache>/arrays``), or ``build()``'s, then stored.

    A missing or damaged entry is (re)built; an entry is written whole or not at all
    (temporary folder, then rename), so concurrent runs never read a partial one. A cache that
    cannot be written (read-only, disk full) costs only the next run's time: a warning naming
    ``what``, and the arrays.
    """
    try:
        folder = Path(folder) if folder is not None else cache_dir("arrays")
    except OSError as error:
        warnings.warn(f"could not cache {what}: {error}", stacklevel=3)
        return build()
    entry = folder / key
    if entry.is_dir():
        try:
            # Memory-mapped, read-only: a second start reads nothing up front (OpenMoji's
            # 0.85 GB took 0.5 s from the page cache, 5 s from disk on this repo's CPU);
            # batches read their rows, and processes on one host share the pages.
            cached = {path.stem: np.load(path, mmap_mode="r") for path in entry.glob("*.npy")}
        except (OSError, ValueError, EOFError):
            cached = {}
        if set(cached) == expected:
            return cached
        shutil.rmtree(entry, ignore_errors=True)  # damaged: rebuilt below
    arrays = build()
    temporary = folder / f".{entry.name}.{os.getpid()}.tmp"
    try:
        temporary.mkdir(parents=True)
        for name, array in arrays.items():
            np.save(temporary / f"{name}.npy", array)
        os.replace(temporary, entry)
    except OSError as error:
        if not entry.is_dir():  # (else another run wrote the same entry first)
            warnings.warn(f"could not cache {what} in {folder}: {error}", stacklevel=3)
    shutil.rmtree(temporary, ignore_errors=True)
    return arrays


def load_arrays_cached(source: ImageSource, image_size: int, limit: int | None = None,
                       progress: bool = True, folder: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """:func:`~keras_scft.data.pipeline.load_arrays`, through a cache of its result.

    ``folder`` defaults to ``<keras_scft cache>/arrays`` (``$KERAS_SCFT_CACHE``); see
    :func:`_cached` for damaged entries and unwritable caches.
    """
    expected = {"image", "sketch"} if source.has_sketch else {"image"}
    return _cached(folder, arrays_key(source, image_size, limit), expected,
                   lambda: load_arrays(source, image_size, limit, progress), "the decoded training images")


def _examples_source_digest() -> str:
    """Digest of the source files that build validation examples (the augmentation and
    data/pipeline.py): a cached validation set is stale once they change."""
    package = Path(__file__).parent.parent
    return files_digest([*sorted((package / "augment").glob("*.py")), package / "data" / "pipeline.py"])


def validation_key(arrays: dict[str, np.ndarray], augment, count: int, seed: int) -> str:
    """Hex digest naming the cache entry of ``validation_examples(arrays, augment, count, seed)``."""
    count = min(count, len(arrays["image"]))
    settings = {k: v for k, v in augment.get_config().items() if k != "name"}  # (names are unique per layer)
    digest = hashlib.sha256(json.dumps({
        "format": FORMAT, "kind": "validation", "count": count, "seed": int(seed),
        "backend": keras.backend.backend(), "augment": settings, "code": _examples_source_digest(),
    }, sort_keys=True, default=str).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name][:count])
        digest.update(f"{name}\0{array.dtype}\0{array.shape}\n".encode() + array.tobytes())
    return "validation-" + digest.hexdigest()[:32]


def validation_examples_cached(arrays: dict[str, np.ndarray], augment, count: int, seed: int = 0,
                               folder: str | os.PathLike | None = None) -> tuple[dict, dict]:
    """:func:`~keras_scft.data.pipeline.validation_examples`, through the same cache as the
    images (the entry holds ``x.<name>.npy`` and ``y.<name>.npy``)."""
    def build() -> dict[str, np.ndarray]:
        x, y = validation_examples(arrays, augment, count, seed)
        return {**{f"x.{k}": v for k, v in x.items()}, **{f"y.{k}": v for k, v in y.items()}}

    flat = _cached(folder, validation_key(arrays, augment, count, seed),
                   {f"x.{k}" for k in EXAMPLE_INPUTS} | {f"y.{k}" for k in EXAMPLE_TARGETS}, build,
                   "the validation examples")
    return ({k[2:]: v for k, v in flat.items() if k.startswith("x.")},
            {k[2:]: v for k, v in flat.items() if k.startswith("y.")})
