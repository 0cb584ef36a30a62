"""PSNR and SSIM between batches of images, one value per image.

Convention: images are [B, H, W, C] and either float in [-1, 1] (what the generator outputs;
``data_range`` defaults to 2) or uint8 in [0, 255] (``data_range`` defaults to 255). Pass
``data_range`` for anything else, e.g. 1.0 for float images in [0, 1].

Written with ``keras.ops`` so the same code scores numpy arrays on the host and tensors inside
a compiled ``test_step`` on any backend. SSIM matches
``skimage.metrics.structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=..., channel_axis=-1)`` and ``tf.image.ssim``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def _as_float_pair(images_0, images_1, data_range: float | None):
    """Validate two image batches; return them as float32 tensors and the data range."""
    images_0, images_1 = ops.convert_to_tensor(images_0), ops.convert_to_tensor(images_1)
    if len(images_0.shape) != 4 or tuple(images_0.shape) != tuple(images_1.shape):
        raise ValueError(
            f"expected two [B, H, W, C] batches of the same shape, got {tuple(images_0.shape)} "
            f"and {tuple(images_1.shape)}"
        )
    if data_range is None:
        dtypes = {keras.backend.standardize_dtype(x.dtype) for x in (images_0, images_1)}
        if dtypes == {"uint8"}:
            data_range = 255.0
        elif "uint8" in dtypes:
            raise ValueError("one batch is uint8 and the other is not; convert one or pass data_range")
        else:
            data_range = 2.0
    return ops.cast(images_0, "float32"), ops.cast(images_1, "float32"), float(data_range)


def psnr(images_0, images_1, data_range: float | None = None):
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range**2 / MSE)``.

    images_0, images_1: [B, H, W, C], float in [-1, 1] or uint8 (see module docstring).
    Returns float32 [B]; identical images give ``inf``.
    """
    x, y, data_range = _as_float_pair(images_0, images_1, data_range)
    mse = ops.mean(ops.square(x - y), axis=(1, 2, 3))
    return 10.0 * ops.log10(data_range**2 / mse)


def _gaussian_taps(size: int, sigma: float) -> np.ndarray:
    offsets = np.arange(size) - (size - 1) / 2.0
    taps = np.exp(-(offsets**2) / (2.0 * sigma**2))
    return taps / taps.sum()


def ssim(
    images_0,
    images_1,
    data_range: float | None = None,
    filter_size: int = 11,
    filter_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
):
    """Structural similarity (Wang et al. 2004) with a Gaussian window, per image.

    Local means, variances and covariance (population, not sample) come from an 11x11
    Gaussian (sigma 1.5) over each channel, only where the window fits (no padding); the SSIM
    map is averaged over those positions and the channels.

    images_0, images_1: [B, H, W, C] with H, W >= filter_size, float in [-1, 1] or uint8.
    Returns float32 [B] in [-1, 1]; identical images give 1.
    """
    x, y, data_range = _as_float_pair(images_0, images_1, data_range)
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    if any(isinstance(size, int) and size < filter_size for size in (height, width)):  # static sizes only
        raise ValueError(f"SSIM needs images of at least {filter_size}x{filter_size}, got {height}x{width}")
    # SSIM is unchanged when images and data_range are scaled together; unit range keeps the
    # float32 E[x^2] - E[x]^2 well conditioned for uint8-scale inputs.
    x, y = x / data_range, y / data_range
    c1, c2 = k1**2, k2**2

    moments = ops.concatenate([x, y, x * x, y * y, x * y], axis=-1)
    taps = _gaussian_taps(filter_size, filter_sigma).astype("float32")
    column = np.tile(taps.reshape(filter_size, 1, 1, 1), (1, 1, 5 * channels, 1))
    moments = ops.depthwise_conv(moments, column, padding="valid")
    moments = ops.depthwise_conv(moments, column.transpose(1, 0, 2, 3), padding="valid")
    mean_x, mean_y, mean_xx, mean_yy, mean_xy = ops.split(moments, 5, axis=-1)

    var_x = mean_xx - mean_x * mean_x
    var_y = mean_yy - mean_y * mean_y
    cov_xy = mean_xy - mean_x * mean_y
    luminance = (2.0 * mean_x * mean_y + c1) / (mean_x * mean_x + mean_y * mean_y + c1)
    contrast_structure = (2.0 * cov_xy + c2) / (var_x + var_y + c2)
    return ops.mean(luminance * contrast_structure, axis=(1, 2, 3))
