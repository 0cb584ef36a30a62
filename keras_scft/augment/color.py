"""Appearance transform a(.): a random shift of each RGB channel, giving I_gt = a(I).

Images are float in [-1, 1]; the shift is drawn uniformly from [-max_shift, max_shift]
independently per image and channel and the result is clipped back to [-1, 1]. The public
SCFT reimplementations use max_shift = 1 (half the value range).
"""

from __future__ import annotations

from keras_scft.augment.backend import Backend, Uniform


def sample_color_shift(uniform: Uniform, batch_size, max_shift: float = 1.0):
    """Per-image, per-channel shifts: float32 [batch_size, 3] in [-max_shift, max_shift]."""
    return uniform((batch_size, 3), -max_shift, max_shift)


def color_shift(B: Backend, images, shift):
    """Apply a(.): images float [N, H, W, 3] in [-1, 1], shift [N, 3] -> [N, H, W, 3] in [-1, 1]."""
    return B.numpy.clip(images + shift[:, None, None, :], -1.0, 1.0)
