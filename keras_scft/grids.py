"""Image grids for looking at results: one row per example, one column per image kind."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from keras_scft.data.io import write_atomic
from keras_scft.inference import to_uint8


def image_grid(columns) -> np.ndarray:
    """uint8 [N * H, K * W, 3] from K columns of N images each.

    Each column is uint8 [N, H, W, 1 or 3] or float [N, H, W, 1 or 3] in [-1, 1]; gray
    columns are repeated to RGB.
    """
    tiles = []
    for column in columns:
        column = np.asarray(column)
        if column.dtype != np.uint8:
            column = to_uint8(column)
        if column.shape[-1] == 1:
            column = np.repeat(column, 3, axis=-1)
        tiles.append(column)
    rows = np.concatenate(tiles, axis=2)
    return rows.reshape(-1, *rows.shape[2:])


def save_png(path, image: np.ndarray) -> None:
    """Write a uint8 RGB image as PNG atomically."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    write_atomic(path, buffer.getvalue())
