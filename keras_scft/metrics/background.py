"""Colour leaked onto the paper: how far colorizations stray from white where the drawing's
own colour image is white.

Line art on white paper (OpenMoji, comics, anime) keeps a white background in the real
colour image; a colorizer that tints it, or leaves blobs of the reference's colours there,
shows up here long before it moves FID. Cross-reference outputs have no ground truth, but
the sketch's own colour image still says where the paper is.
"""

from __future__ import annotations

import numpy as np

WHITE_THRESHOLD = 250


def background_error(outputs: np.ndarray, own_colors: np.ndarray,
                     threshold: int = WHITE_THRESHOLD) -> tuple[float | None, float]:
    """Mean absolute difference from white (0..255, averaged over RGB) of ``outputs`` over
    the pixels where ``own_colors`` is white (every channel >= ``threshold``).

    Args:
        outputs: uint8 [N, H, W, 3] colorizations.
        own_colors: uint8 [N, H, W, 3] the colour images the sketches were drawn from.

    Returns:
        ``(error, white_fraction)``: error None when no pixel is white.
    """
    outputs, own_colors = np.asarray(outputs), np.asarray(own_colors)
    if outputs.shape != own_colors.shape or outputs.ndim != 4 or outputs.shape[-1] != 3:
        raise ValueError(f"expected two uint8 [N, H, W, 3] batches of one shape, got {outputs.shape} "
                         f"and {own_colors.shape}")
    white = np.all(own_colors >= threshold, axis=-1)
    if not white.any():
        return None, 0.0
    distance = np.abs(outputs.astype(np.float32) - 255.0).mean(axis=-1)
    return float(distance[white].mean()), float(white.mean())
