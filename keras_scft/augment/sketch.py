"""XDoG outline extraction (Winnemöller et al. 2012) producing the training sketch I_s.

Sketch convention used everywhere in keras_scft: one channel, float in [-1, 1],
white paper = +1, ink = -1.

The p-form of XDoG on the luminance L in [0, 1]:
``S = (1 + p) G_sigma(L) - p G_{k sigma}(L)``; ``T = 1`` where ``S >= eps`` else
``1 + tanh(phi (S - eps))``. With the default phi = 1e9 the lines are binary. Defaults follow
the public SCFT reimplementations (sigma in [0.3, 0.5], k = 4.5, p = 19, eps = 0.01).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from keras_scft.augment.backend import Backend, Uniform


@dataclass(frozen=True)
class XDoGRanges:
    """Uniform sampling ranges ``(low, high)`` of the XDoG parameters, one draw per image."""

    sigma: tuple[float, float] = (0.3, 0.5)
    k: tuple[float, float] = (4.5, 4.5)
    p: tuple[float, float] = (19.0, 19.0)
    eps: tuple[float, float] = (0.01, 0.01)
    phi: tuple[float, float] = (1e9, 1e9)

    def kernel_radius(self) -> int:
        """Half-width of the Gaussian taps that covers 3 standard deviations of the widest blur."""
        return max(1, int(math.ceil(3.0 * self.sigma[1] * self.k[1])))


def luminance(B: Backend, images):
    """RGB float [N, H, W, 3] in [-1, 1] -> luminance float [N, H, W, 1] in [0, 1] (BT.601)."""
    weights = B.numpy.convert_to_tensor([[0.299], [0.587], [0.114]], dtype=images.dtype)  # sums to 1
    # a matmul, not a sum over the 3-wide last axis (3x faster in TensorFlow on CPU)
    return B.numpy.matmul(images, weights) * 0.5 + 0.5


def gaussian_taps(B: Backend, sigma, radius: int):
    """Normalized 1-D Gaussian taps per sigma: sigma float32 [M] -> float32 [M, 2 * radius + 1]."""
    offsets = B.numpy.arange(-radius, radius + 1, dtype="float32")
    logits = -(offsets[None, :] ** 2) / (2.0 * sigma[:, None] ** 2)
    taps = B.numpy.exp(logits)
    return taps / B.numpy.sum(taps, axis=-1, keepdims=True)


def gaussian_blur_per_channel(B: Backend, images, taps):
    """Separable Gaussian blur with its own kernel per (image, channel), reflect-padded.

    Args:
        images: float [N, H, W, C].
        taps: float32 [N, C, T] 1-D taps (T odd).

    Returns:
        float [N, H, W, C].

    Folds batch into channels ([1, H, W, N*C]) so one depthwise convolution applies a
    different kernel to every image.
    """
    shape = B.core.shape(images)
    n, h, w, c = shape[0], shape[1], shape[2], shape[3]
    t = B.core.shape(taps)[-1]
    radius = (t - 1) // 2
    x = B.numpy.reshape(B.numpy.transpose(images, (1, 2, 0, 3)), (1, h, w, -1))
    x = B.numpy.pad(x, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="reflect")
    flat_taps = B.numpy.reshape(taps, (-1, t))  # [N*C, T], same order as the folded channels
    kernel_v = B.numpy.transpose(flat_taps, (1, 0))[:, None, :, None]  # [T, 1, N*C, 1]
    kernel_h = B.numpy.transpose(flat_taps, (1, 0))[None, :, :, None]  # [1, T, N*C, 1]
    x = B.nn.depthwise_conv(x, kernel_v, strides=1, padding="valid")
    x = B.nn.depthwise_conv(x, kernel_h, strides=1, padding="valid")
    return B.numpy.transpose(B.numpy.reshape(x, (h, w, n, c)), (2, 0, 1, 3))


def sample_xdog_params(uniform: Uniform, batch_size, ranges: XDoGRanges = XDoGRanges()) -> dict:
    """Draw per-image XDoG parameters: dict of float32 [batch_size] arrays."""
    names = ("sigma", "k", "p", "eps", "phi")
    u = uniform((batch_size, len(names)))
    params = {}
    for i, name in enumerate(names):
        low, high = getattr(ranges, name)
        params[name] = low + (high - low) * u[:, i]
    return params


def xdog_sketch(B: Backend, images, params: dict, radius: int):
    """XDoG sketch of RGB images.

    Args:
        images: float32 [N, H, W, 3] in [-1, 1].
        params: per-image ``sigma, k, p, eps, phi`` float32 [N] (see :func:`sample_xdog_params`).
        radius: Gaussian half-width in pixels (static), e.g. ``XDoGRanges().kernel_radius()``.

    Returns:
        float32 [N, H, W, 1] in [-1, 1], white = 1, ink = -1.
    """
    lum = luminance(B, images)
    both = B.numpy.concatenate([lum, lum], axis=-1)  # blur with sigma and with k * sigma
    sigmas = B.numpy.stack([params["sigma"], params["sigma"] * params["k"]], axis=-1)
    taps = B.numpy.reshape(
        gaussian_taps(B, B.numpy.reshape(sigmas, (-1,)), radius), (-1, 2, 2 * radius + 1)
    )
    blurred = gaussian_blur_per_channel(B, both, taps)
    p = params["p"][:, None, None, None]
    eps = params["eps"][:, None, None, None]
    phi = params["phi"][:, None, None, None]
    fine = blurred[..., :1]
    s = fine + p * (fine - blurred[..., 1:])  # (1 + p) G_sigma - p G_k sigma
    # 2 T - 1 with T = 1 + tanh(phi * d) for d < 0, written so that huge phi gives no inf - inf.
    return B.numpy.where(s >= eps, 1.0, 1.0 + 2.0 * B.numpy.tanh(B.numpy.maximum(phi * (s - eps), -30.0)))
