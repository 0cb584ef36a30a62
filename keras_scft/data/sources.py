"""Dataset sources: where (color image, optional line art) records come from.

Each source is a small class over a sorted list of files. Indexing or iterating yields a
record dict::

    {"image": uint8 [H, W, 3] RGB,
     "sketch": uint8 [H, W, 1], white background (255), dark lines,  # if it has line art
     "name": str}                                     # stable id, e.g. the relative path

Unreadable files never stop a run: files whose header cannot be parsed are dropped when the
source is listed, files that fail to decode are dropped while iterating; both emit a
:class:`SkippedImageWarning` and are counted in ``source.skipped``. ``len(source)`` is the
number of listed files, so an iteration may yield fewer records when decoding fails.

:func:`open_source` builds a source from a recipe's ``data`` config, e.g.
``{"type": "folder", "root": "photos/"}``.
"""

from __future__ import annotations

import collections
import inspect
import os
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from keras_scft.data.header_cache import known_readable, remember_readable
from keras_scft.data.io import (
    IMAGE_EXTENSIONS,
    UnreadableImageError,
    center_crop_square,
    check_image_header,
    is_image_file,
    read_image,
    resize_to,
)
from keras_scft.data.openmoji import SPLITS, read_manifest

Record = dict[str, Any]


class SkippedImageWarning(UserWarning):
    """A file was skipped because it could not be read."""


class ImageSource:
    """Common interface of all sources.

    A new format is one small subclass: its ``__init__`` sets ``self.paths`` (filtered through
    ``self._readable``) and it implements ``_read(index) -> Record``.

    Attributes:
        paths: the listed (header-readable) files in iteration order; for paired sources,
            the color files.
        files: every header-readable file the records are read from (line art included), in
            the order they were checked (what a cache of the decoded records depends on).
        has_sketch: whether records carry a ``"sketch"``.
    """

    has_sketch = False

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.files: list[Path] = []
        self._skipped: dict[Path, str] = {}

    @property
    def skipped(self) -> int:
        """How many distinct files were skipped as unreadable so far (listing + reading)."""
        return len(self._skipped)

    @property
    def skipped_files(self) -> dict[Path, str]:
        """Skipped file -> reason, in the order they were found."""
        return dict(self._skipped)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Record:
        """Read record ``index``; raises :class:`UnreadableImageError` if its file is corrupt."""
        return self._read(index)

    def __iter__(self) -> Iterator[Record]:
        return self._records(range(len(self)))

    def as_numpy_iterator(self, image_size: int, shuffle: bool = False, seed: int = 0,
                          workers: int | None = None) -> Iterator[Record]:
        """One pass over the source with every record resized to a fixed square size.

        Each image is center-cropped to a square, then resized (Lanczos) to
        ``[image_size, image_size]``; the sketch gets the same crop and resize, so it stays
        aligned with its image. Suited to ``tf.data.Dataset.from_generator``; pass a different
        ``seed`` per epoch to reshuffle. ``workers`` threads decode and resize ahead of the
        consumer (default: up to 8, one per CPU core; 1 = no threads); the order is the same.

        Yields:
            ``{"image": uint8 [S, S, 3], "sketch": uint8 [S, S, 1] (if has_sketch), "name": str}``.
        """
        order = np.arange(len(self))
        if shuffle:
            order = np.random.default_rng(seed).permutation(len(self))

        def load(index) -> Record | None:
            record = self._read_or_skip(int(index))
            if record is not None:
                record["image"] = resize_to(center_crop_square(record["image"]), image_size)
                if "sketch" in record:
                    record["sketch"] = resize_to(center_crop_square(record["sketch"]), image_size)
            return record

        workers = workers or min(8, os.cpu_count() or 1)
        if workers == 1:
            records = map(load, order)
        else:
            records = _ordered_map(load, order, workers)
        yield from (record for record in records if record is not None)

    def _records(self, order) -> Iterator[Record]:
        for index in order:
            record = self._read_or_skip(int(index))
            if record is not None:
                yield record

    def _read_or_skip(self, index: int) -> Record | None:
        try:
            return self._read(index)
        except (UnreadableImageError, OSError) as error:
            self._skip(getattr(error, "path", None) or self.paths[index], str(error))
            return None

    def _read(self, index: int) -> Record:
        raise NotImplementedError

    def _skip(self, path: Path, reason: str) -> None:
        if path not in self._skipped:
            warnings.warn(f"skipping unreadable file: {reason}", SkippedImageWarning, stacklevel=3)
        self._skipped[path] = reason

    def _readable(self, paths: list[Path]) -> list[Path]:
        """``paths`` without the files whose image header cannot be parsed (files that passed
        before and have not changed are not opened again: :mod:`keras_scft.data.header_cache`)."""
        known = known_readable(paths)
        readable, checked = [], []
        for path in paths:
            if path in known:
                readable.append(path)
                continue
            try:
                check_image_header(path)
                readable.append(path)
                checked.append(path)
            except (UnreadableImageError, OSError) as error:
                self._skip(path, str(error))
        if checked:
            remember_readable(checked)
        self.files.extend(readable)
        return readable


class ImageFolder(ImageSource):
    """Color images anywhere under ``root`` (no line art; sketches are extracted later).

    Files with a :data:`IMAGE_EXTENSIONS` suffix (any case) are found recursively, sorted by
    relative path; hidden files and folders (name starting with ".") are ignored. A record's
    name is its relative path without extension, e.g. ``"cats/001"``.
    """

    def __init__(self, root: str | os.PathLike):
        super().__init__()
        self.root = Path(root)
        self.paths = self._readable(list_images(self.root))

    def _read(self, index: int) -> Record:
        path = self.paths[index]
        return {"image": read_image(path, "rgb"), "name": _name(path, self.root)}


class Pix2PixFolder(ImageSource):
    """Side-by-side pairs as in pix2pix's edges2shoes: one file holds line art and photo.

    Each image (e.g. 512x256) is split into a left and a right half of equal width; the
    ``sketch_side`` half becomes the grayscale sketch (inverted if its background is dark, so
    it is always dark lines on white), the other half the color image.
    """

    has_sketch = True

    def __init__(self, root: str | os.PathLike, sketch_side: str = "left"):
        super().__init__()
        if sketch_side not in ("left", "right"):
            raise ValueError(f'sketch_side must be "left" or "right", got {sketch_side!r}')
        self.root = Path(root)
        self.sketch_side = sketch_side
        self.paths = self._readable(list_images(self.root))

    def _read(self, index: int) -> Record:
        path = self.paths[index]
        pixels = read_image(path, "rgb")
        half = pixels.shape[1] // 2
        if half == 0:
            raise UnreadableImageError(path, f"{pixels.shape[1]} px wide, too narrow to split")
        left, right = pixels[:, :half], pixels[:, pixels.shape[1] - half:]
        sketch, image = (left, right) if self.sketch_side == "left" else (right, left)
        return {"image": np.ascontiguousarray(image), "sketch": _sketch_from_rgb(sketch),
                "name": _name(path, self.root)}


class PairedFolders(ImageSource):
    """Line art and color images in two folders, matched by relative path without extension.

    ``sketches/a/001.png`` pairs with ``colors/a/001.jpg``. Files without a partner are
    dropped with a warning and listed in ``unmatched``. A sketch whose size differs from its
    color image is resized to match it.
    """

    has_sketch = True

    def __init__(self, sketch_dir: str | os.PathLike, color_dir: str | os.PathLike):
        super().__init__()
        self.sketch_dir, self.color_dir = Path(sketch_dir), Path(color_dir)
        sketches = {_name(p, self.sketch_dir): p for p in list_images(self.sketch_dir)}
        colors = {_name(p, self.color_dir): p for p in list_images(self.color_dir)}
        self.unmatched: list[str] = sorted(set(sketches) ^ set(colors))
        matched = sorted(set(sketches) & set(colors))
        if not matched:
            raise ValueError(
                f"no file names match between sketch folder {self.sketch_dir} and color folder "
                f"{self.color_dir} (e.g. sketch {min(sketches)!r}, color {min(colors)!r}); pairs "
                "must share their path relative to each folder, ignoring the extension"
            )
        if self.unmatched:
            warnings.warn(
                f"{len(self.unmatched)} files in {self.sketch_dir} / {self.color_dir} have no "
                f"partner and are ignored (e.g. {self.unmatched[:3]})", SkippedImageWarning,
                stacklevel=2,
            )
        readable_colors = set(self._readable([colors[n] for n in matched]))
        readable_sketches = set(self._readable([sketches[n] for n in matched]))
        self._pairs = [(sketches[n], colors[n], n) for n in matched
                       if colors[n] in readable_colors and sketches[n] in readable_sketches]
        self.paths = [color for _, color, _ in self._pairs]

    def _read(self, index: int) -> Record:
        sketch_path, color_path, name = self._pairs[index]
        image = read_image(color_path, "rgb")
        sketch = _white_background(read_image(sketch_path, "gray"))
        return {"image": image, "sketch": resize_to(sketch, image.shape[:2]), "name": name}


class OpenMojiSource(ImageSource):
    """One split of a prepared OpenMoji folder (``tools/prepare_data.py openmoji``).

    The folder holds ``manifest.json``, ``color/<name>.png`` and, when the manifest says
    ``"line_art": true``, ``line/<name>.png``. Names are OpenMoji hex codes, e.g.
    ``"1F44B-1F3FB"``. Without line art, records carry no sketch.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train"):
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.root = Path(root)
        self.split = split
        self.manifest = read_manifest(self.root)
        self.has_sketch = bool(self.manifest["line_art"])
        self.names: list[str] = []
        folders = [self.root / kind for kind in (("color", "line") if self.has_sketch else ("color",))]
        files = [(name, [folder / f"{name}.png" for folder in folders]) for name in self.manifest["splits"][split]]
        readable = set(self._readable([path for _, pair in files for path in pair]))  # one header-cache read
        for name, pair in files:
            if all(path in readable for path in pair):
                self.names.append(name)
                self.paths.append(pair[0])

    def _read(self, index: int) -> Record:
        name = self.names[index]
        record = {"image": read_image(self.root / "color" / f"{name}.png", "rgb"), "name": name}
        if self.has_sketch:
            record["sketch"] = read_image(self.root / "line" / f"{name}.png", "gray")
        return record


SOURCE_TYPES: dict[str, type[ImageSource]] = {
    "folder": ImageFolder,
    "pix2pix": Pix2PixFolder,
    "paired": PairedFolders,
    "openmoji": OpenMojiSource,
}


def source_from_spec(source_type: str, **options: Any) -> ImageSource:
    """Build the source registered as ``source_type`` in :data:`SOURCE_TYPES` with ``options``.

    Example: ``source_from_spec("paired", sketch_dir="s/", color_dir="c/")``.
    """
    if source_type not in SOURCE_TYPES:
        raise ValueError(f"unknown data source type {source_type!r}; "
                         f"allowed: {', '.join(SOURCE_TYPES)}")
    cls = SOURCE_TYPES[source_type]
    parameters = inspect.signature(cls.__init__).parameters
    allowed = [name for name in parameters if name != "self"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"data source {source_type!r} got unknown option(s) {unknown}; "
                         f"allowed: {', '.join(allowed)}")
    missing = [name for name in allowed if name not in options
               and parameters[name].default is inspect.Parameter.empty]
    if missing:
        raise ValueError(f"data source {source_type!r} needs option(s) {missing}")
    return cls(**options)


def open_source(config: Mapping[str, Any]) -> ImageSource:
    """Build a source from ``{"type": <name>, **options}`` (see :func:`source_from_spec`)."""
    if "type" not in config:
        raise ValueError(f'data source config needs a "type" field (one of: '
                         f'{", ".join(SOURCE_TYPES)}); got fields {sorted(config)}')
    options = {key: value for key, value in config.items() if key != "type"}
    return source_from_spec(config["type"], **options)


def _ordered_map(fn, items, workers: int) -> Iterator:
    """``map(fn, items)`` on a thread pool (image decoding and resizing release the GIL), in
    order, with at most ``4 * workers`` results computed ahead of the consumer."""
    pending: collections.deque = collections.deque()
    with ThreadPoolExecutor(workers) as pool:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > 4 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def list_images(root: str | os.PathLike) -> list[Path]:
    """All image files under ``root`` (recursive, any-case extension), sorted by relative path.

    Raises:
        FileNotFoundError: ``root`` does not exist or is not a folder.
        ValueError: ``root`` holds no image files.
    """
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise FileNotFoundError(f"image folder {root} {what}")
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        found += [Path(folder, f) for f in files if not f.startswith(".") and is_image_file(f)]
    if not found:
        raise ValueError(f"folder {root} has no images (looked for {' '.join(IMAGE_EXTENSIONS)}, "
                         "in any letter case, also in subfolders)")
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def _name(path: Path, root: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def _sketch_from_rgb(pixels: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W, 3]`` line art -> uint8 ``[H, W, 1]`` gray, white background."""
    gray = np.rint(pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
    return _white_background(gray.astype(np.uint8)[..., None])


def _white_background(sketch: np.ndarray) -> np.ndarray:
    """Invert uint8 ``[H, W, 1]`` line art whose background (median value) is dark."""
    return 255 - sketch if np.median(sketch) < 128 else sketch
