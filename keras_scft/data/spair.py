"""SPair-71k (Min et al. 2019) keypoint-annotated image pairs, as used by SC-PSNR.

Reads the dataset as released (``SPair-71k.tar.gz`` from
https://cvlab.postech.ac.kr/research/SPair-71k/)::

    SPair-71k/
      PairAnnotation/{trn,val,test}/<pair_id>-<src>-<trg>:<category>.json
      JPEGImages/<category>/<imname>.jpg
      (ImageAnnotation/, Segmentation/, Layout/: not needed here)

Each pair file is a JSON object; the fields read here are ``src_imname``, ``trg_imname``
(file names inside ``JPEGImages/<category>/``), ``category``, and ``src_kps`` / ``trg_kps``:
lists ``[[x, y], ...]`` of the same length, entry k of one marking the same semantic part as
entry k of the other, in pixels of the original image (x to the right, y down). The other
fields (``src_imsize``, ``src_bndbox``, ``kps_ids``, poses, variation flags, ...) are ignored;
image sizes are taken from the decoded images. Pair files are recognised by their
``category`` field, not their name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPAIR_SPLITS = ("trn", "val", "test")
SPAIR_URL = "https://cvlab.postech.ac.kr/research/SPair-71k/"
# The categories the SCFT paper reports SC-PSNR on.
SC_PSNR_CATEGORIES = ("cat", "dog", "car")
_SPLIT_ALIASES = {"train": "trn", "validation": "val"}
_REQUIRED_FIELDS = ("src_imname", "trg_imname", "category", "src_kps", "trg_kps")


@dataclass(frozen=True)
class SPairPair:
    """One annotated pair: the source is the image to sketch, the target is the reference.

    Attributes:
        name: the annotation file's stem, e.g. ``"000012-2008_001234-2009_004321:cat"``.
        category: e.g. ``"cat"``.
        source_image, target_image: JPEG paths.
        source_keypoints, target_keypoints: float32 [K, 2] (x, y) in pixels of each original
            image; row k of both marks the same part.
    """

    name: str
    category: str
    source_image: Path
    target_image: Path
    source_keypoints: np.ndarray
    target_keypoints: np.ndarray


def spair_split(split: str) -> str:
    """The SPair-71k folder name of a split: ``"trn"``, ``"val"`` or ``"test"`` (accepts "train")."""
    folder = _SPLIT_ALIASES.get(split, split)
    if folder not in SPAIR_SPLITS:
        raise ValueError(f"SPair-71k split must be one of {', '.join(SPAIR_SPLITS)} (or train), "
                         f"got {split!r}")
    return folder


def read_spair_pairs(root: str | os.PathLike, split: str = "test",
                     categories: Sequence[str] | None = SC_PSNR_CATEGORIES,
                     limit: int | None = None) -> list[SPairPair]:
    """The pairs of one split, filtered by category, in category order then by file name.

    Pairs without keypoints are left out (they have nothing to score).

    Args:
        root: the ``SPair-71k`` folder (holding ``PairAnnotation/`` and ``JPEGImages/``).
        split: ``"trn"`` (or ``"train"``), ``"val"`` or ``"test"``.
        categories: keep these categories (each must have pairs); None keeps all.
        limit: keep at most this many pairs per category (the first in name order).

    Raises:
        FileNotFoundError: ``root``, the split folder or an image is missing.
        ValueError: a pair file is malformed, or a requested category has no pairs.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"SPair-71k folder {root} does not exist; download and extract "
                                f"SPair-71k.tar.gz from {SPAIR_URL} and pass its SPair-71k folder")
    annotations = root / "PairAnnotation"
    if not annotations.is_dir():
        raise FileNotFoundError(f"{root} has no PairAnnotation/ folder; pass the extracted "
                                "SPair-71k folder (the one holding PairAnnotation/ and JPEGImages/)")
    folder = annotations / spair_split(split)
    if not folder.is_dir():
        found = sorted(p.name for p in annotations.iterdir() if p.is_dir())
        raise FileNotFoundError(f"SPair-71k split folder {folder} does not exist "
                                f"(found: {', '.join(found) or 'none'})")
    by_category: dict[str, list[SPairPair]] = {}
    for path in sorted(folder.glob("*.json")):
        pair = _read_pair(path, root)
        if len(pair.source_keypoints):  # a pair without keypoints has nothing to score
            by_category.setdefault(pair.category, []).append(pair)
    wanted = sorted(by_category) if categories is None else list(categories)
    missing = [c for c in wanted if c not in by_category]
    if missing:
        raise ValueError(f"no {folder.name} pairs of categor{'y' if len(missing) == 1 else 'ies'} "
                         f"{', '.join(missing)} in {folder}; categories there: "
                         f"{', '.join(sorted(by_category)) or 'none'}")
    pairs = [pair for c in wanted for pair in by_category[c][:limit]]
    for pair in pairs:
        for image in (pair.source_image, pair.target_image):
            if not image.is_file():
                raise FileNotFoundError(f"SPair-71k pair {pair.name} names image {image}, which "
                                        "does not exist")
    return pairs


def _read_pair(path: Path, root: Path) -> SPairPair:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"SPair-71k pair file {path} is not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"SPair-71k pair file {path} does not hold a JSON object")
    absent = [f for f in _REQUIRED_FIELDS if f not in data]
    if absent:
        raise ValueError(f"SPair-71k pair file {path} lacks field(s) {', '.join(absent)}")
    keypoints = [_keypoints(data[f], path, f) for f in ("src_kps", "trg_kps")]
    if len(keypoints[0]) != len(keypoints[1]):
        raise ValueError(f'{path}: "src_kps" has {len(keypoints[0])} points but "trg_kps" has '
                         f"{len(keypoints[1])}; they must correspond one to one")
    category = str(data["category"])
    images = [root / "JPEGImages" / category / str(data[f]) for f in ("src_imname", "trg_imname")]
    return SPairPair(path.stem, category, images[0], images[1], *keypoints)


def _keypoints(value, path: Path, field: str) -> np.ndarray:
    try:
        points = np.asarray(value, np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f'{path}: field "{field}" must be a list of [x, y] numbers ({error})'
                         ) from error
    if points.size == 0:
        return np.zeros((0, 2), np.float32)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f'{path}: field "{field}" must be a list of [x, y] pairs, '
                         f"got shape {points.shape}")
    return points
