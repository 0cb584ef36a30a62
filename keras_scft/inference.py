"""Colorize with a trained generator: numpy uint8 in, numpy uint8 out, any image size.

Conventions: sketches uint8 [N, H, W, 1] (or [N, H, W, 3], converted to gray), white paper =
255; references and outputs uint8 RGB [N, H, W, 3]. Inputs are resized (anti-aliased) to the
model size, a multiple of the generator's stride (the size it was trained at when the
generator records it, else the sketch's size rounded to the stride), and the output is
resized back to the sketch's size.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import ops

import keras_scft.model  # noqa: F401  (registers ColorizerModel for loading .keras files)
from keras_scft.layers.generator import SCFTGenerator
from keras_scft.saving import load_model


def load_generator(model) -> SCFTGenerator:
    """A generator from a ColorizerModel, an SCFTGenerator, or a ``.keras`` file of either."""
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"model file {path} does not exist")
        if path.suffix != ".keras":
            raise ValueError(f"model file {path} is not a .keras file")
        model = load_model(path, compile=False)
    generator = getattr(model, "generator", model)
    if not isinstance(generator, SCFTGenerator):
        raise TypeError(f"expected a ColorizerModel or SCFTGenerator, got {type(model).__name__}")
    return generator


def model_size(generator: SCFTGenerator, height: int, width: int, size=None) -> tuple[int, int]:
    """(height, width) the network runs at: ``size``, the trained size, or the input rounded."""
    stride = generator.stride
    if size is not None:
        h, w = (size, size) if isinstance(size, int) else size
    elif generator.image_size:
        h, w = generator.image_size
    else:
        h, w = height, width
    h, w = max(stride, round(h / stride) * stride), max(stride, round(w / stride) * stride)
    return int(h), int(w)


def to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


def to_uint8(images) -> np.ndarray:
    """float [-1, 1] -> uint8 [0, 255] (rounded, clipped)."""
    return np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _gray(sketch: np.ndarray) -> np.ndarray:
    sketch = np.asarray(sketch)
    if sketch.ndim != 4 or sketch.shape[-1] not in (1, 3):
        raise ValueError(f"sketch must be [N, H, W, 1 or 3], got shape {sketch.shape}")
    if sketch.shape[-1] == 3:
        sketch = np.rint(sketch.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    return sketch


def _resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if images.shape[1:3] == tuple(size):
        return images.astype(np.float32)
    return np.asarray(ops.image.resize(images.astype(np.float32), size, interpolation="bilinear",
                                       antialias=True), np.float32)


def colorize(model, sketch: np.ndarray, reference: np.ndarray, size=None, batch_size: int = 16) -> np.ndarray:
    """Colorize sketches with references.

    Args:
        model: ColorizerModel, SCFTGenerator or a ``.keras`` path.
        sketch: uint8 [N, H, W, 1 or 3], white = 255.
        reference: uint8 [N, h, w, 3] (any size; resized to the model size).
        size: network size (int or (h, w)); default: the trained size, else the sketch's.
        batch_size: images per forward pass.

    Returns:
        uint8 [N, H, W, 3] at the sketch's size.
    """
    generator = load_generator(model)
    sketch, reference = _gray(sketch), np.asarray(reference)
    if reference.ndim != 4 or reference.shape[-1] != 3:
        raise ValueError(f"reference must be [N, H, W, 3], got shape {reference.shape}")
    if len(sketch) != len(reference):
        raise ValueError(f"got {len(sketch)} sketches but {len(reference)} references")
    height, width = sketch.shape[1:3]
    net = model_size(generator, height, width, size)
    outputs = []
    for start in range(0, len(sketch), batch_size):
        s = _resize(sketch[start : start + batch_size], net) / 127.5 - 1.0
        r = _resize(reference[start : start + batch_size], net) / 127.5 - 1.0
        image = generator.predict_on_batch({"sketch": s, "reference": r})["image"]
        image = (np.asarray(image, np.float32) + 1.0) * 127.5
        outputs.append(to_uint8(_resize(image, (height, width)) / 127.5 - 1.0))
    return np.concatenate(outputs) if outputs else np.zeros((0, height, width, 3), np.uint8)
