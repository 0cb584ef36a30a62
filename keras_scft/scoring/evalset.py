"""The images `keras-scft score` evaluates on, and the self-reference examples built from them.

``--data`` names a dataset in one of three ways (:func:`data_source_config`): a prepared
OpenMoji folder (has ``manifest.json``), any other image folder, or JSON (a file, or the text
itself) holding either a data source config (``{"type": "paired", ...}``, see
``keras_scft.data.open_source``) or a training recipe, whose ``data`` section is used. For
OpenMoji the ``--split`` is used; other sources have no splits and are used whole (for a
folder recipe that includes the images its training held out and those it trained on).

The whole set is held in memory at the evaluation size (N * S * S * 4 bytes: 119 MB for the
454 OpenMoji test emoji at 256 px); use ``--limit`` for large folders.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_scft.augment.example import SelfAugment
from keras_scft.data.openmoji import MANIFEST_NAME
from keras_scft.data.pipeline import load_arrays
from keras_scft.data.sources import OpenMojiSource, open_source
from keras_scft.inference import to_uint8
from keras_scft.metrics.sc_psnr import xdog_line_art
from keras_scft.recipes import RecipeError, validate

# Images per SelfAugment call: fixed, so that the examples do not depend on --batch-size.
AUGMENT_CHUNK = 16


@dataclass(frozen=True)
class EvalSet:
    """An evaluation image set at one square size S.

    Attributes:
        images: uint8 [N, S, S, 3] colour images (the ground truth).
        sketches: uint8 [N, S, S, 1], white = 255: the real line art when ``line_art``, else
            the images' fixed-parameter XDoG (:func:`keras_scft.metrics.sc_psnr.xdog_line_art`).
        line_art: whether the sketches are real line art.
        source: the data source config it was read from (JSON-ready).
        names: the N image names (OpenMoji hex codes); empty for other sources.
        categories: the N images' OpenMoji ``"group/subgroup"``; empty for other sources and
            for folders prepared before manifests had categories.
    """

    images: np.ndarray
    sketches: np.ndarray
    line_art: bool
    source: dict
    names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.images)


def data_source_config(data: str, split: str) -> dict:
    """The data source config ``--data`` names (see the module docstring).

    Raises:
        FileNotFoundError: ``data`` is neither JSON nor an existing path.
        ValueError: the JSON is invalid, or a recipe that does not validate.
    """
    path = Path(data)
    if data.lstrip().startswith("{"):
        value = _parse_json(data, "--data")
    elif path.is_dir():
        kind = "openmoji" if (path / MANIFEST_NAME).is_file() else "folder"
        value = {"type": kind, "root": str(path)}
    elif path.is_file():
        value = _parse_json(path.read_text(encoding="utf-8"), str(path))
    else:
        raise FileNotFoundError(
            f"--data {data}: no such file or folder; pass a prepared OpenMoji folder, an image "
            "folder, a JSON file with a data source config or a recipe, or the config inline, "
            'e.g. \'{"type": "folder", "root": "photos/"}\'')
    config = dict(value) if isinstance(value, dict) and "type" in value else _recipe_source_config(value, data)
    if config["type"] == "openmoji":
        config["split"] = split
    return config


def load_eval_set(config: dict, size: int, limit: int | None = None, progress: bool = False) -> EvalSet:
    """Read a data source (its first ``limit`` records) at ``size`` x ``size``.

    Images are centre-cropped to a square and resized (Lanczos), as in training.
    """
    source = open_source(config)
    arrays = load_arrays(source, size, limit, progress)
    images = arrays["image"]
    names, categories = (), ()
    if isinstance(source, OpenMojiSource):
        names = tuple(source.names[:len(images)])
        known = source.manifest.get("categories", {})
        categories = tuple(known[name] for name in names) if all(n in known for n in names) else ()
    if "sketch" in arrays:
        return EvalSet(images, arrays["sketch"], True, dict(config), names, categories)
    sketches = np.concatenate([xdog_line_art(images[i:i + AUGMENT_CHUNK])
                               for i in range(0, len(images), AUGMENT_CHUNK)])
    return EvalSet(images, sketches, False, dict(config), names, categories)


def evaluation_augment(feature_stride: int, seed: int, color_shift: float = 1.0,
                       keep_white: bool = False) -> SelfAugment:
    """The fixed :class:`SelfAugment` of the self-reference and correspondence tasks.

    The default (paper's) TPS warp, seeded, and per-channel colour shifts of up to
    ``color_shift`` ([-1, 1] units; the paper's 1.0 by default), optionally fading out on
    near-white paper (``keep_white``, see :class:`SelfAugment`). It is always given the sketch
    (:attr:`EvalSet.sketches`), so its own random XDoG is never used.
    """
    return SelfAugment(feature_stride=feature_stride, given_sketch_prob=1.0, seed=seed, color_shift=color_shift,
                       keep_white=keep_white)


def self_reference_examples(evalset: EvalSet, augment: SelfAugment, batch_size: int
                            ) -> Iterator[dict[str, np.ndarray]]:
    """Self-augmented examples of the whole set (given its sketches), batch by batch.

    ``augment`` is applied to chunks of :data:`AUGMENT_CHUNK` images with parameters drawn by
    numpy from ``(augment.seed, chunk index)``, so example i depends only on the seed and the
    images, not on ``batch_size``, the backend or the machine (and no TensorFlow is needed).
    Yields ``{"sketch": uint8 [B, S, S, 1], "reference", "target": uint8 [B, S, S, 3],
    "correspondence": int32 [B, G], "valid": float32 [B, G]}`` (see :class:`SelfAugment`);
    the last batch may be shorter.
    """
    images = ("sketch", "reference", "target")
    pending: dict[str, np.ndarray] | None = None  # examples made but not yielded yet
    for chunk, start in enumerate(range(0, len(evalset), AUGMENT_CHUNK)):
        stop = start + AUGMENT_CHUNK
        rng = np.random.default_rng([augment.seed or 0, chunk])
        example = augment.example_from_numpy(evalset.images[start:stop], rng, evalset.sketches[start:stop])
        example = {key: to_uint8(example[key]) if key in images else example[key]
                   for key in (*images, "correspondence", "valid")}
        pending = example if pending is None else {k: np.concatenate([pending[k], v]) for k, v in example.items()}
        last = stop >= len(evalset)
        while len(pending["target"]) >= batch_size or (last and len(pending["target"])):
            yield {key: value[:batch_size] for key, value in pending.items()}
            pending = {key: value[batch_size:] for key, value in pending.items()}


def _parse_json(text: str, where: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where} is not valid JSON: {error}") from error


def _recipe_source_config(recipe, where: str) -> dict:
    """The data source config of a training recipe's ``data`` section."""
    try:
        data = validate(recipe)["data"]
    except RecipeError as error:
        raise ValueError(f"--data {where}: not a data source config (no \"type\" field), and not a "
                         f"valid recipe: {error}") from error
    if data["type"] == "paired":
        return {"type": "paired", "sketch_dir": data["sketch_dir"], "color_dir": data["color_dir"]}
    return {"type": data["type"], "root": data["root"]}
