"""A stride-1 convolution with few output channels as one matmul and a sum of shifted maps."""

from __future__ import annotations

from keras import ops


def tap_sum_conv(x, kernel):
    """``keras.ops.conv(x, kernel, padding="same")`` (stride 1, channels last) for a kernel with
    few filters: one matmul gives every tap's product, [B, H, W, C] x [C, kh * kw * F], and the
    output is the sum of the kh * kw taps' maps, each shifted by its offset.

    x [B, H, W, C], kernel [kh, kw, C, F] -> [B, H, W, F] in x's dtype. The matmul and the sum
    run in float32 (their cost is small next to reading x): at F = 1 cuDNN's convolution leaves
    its tensor cores idle, here the one pass over x is memory-bound.
    """
    kh, kw, channels, filters = kernel.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2  # Keras/TF "same" at stride 1
    taps = ops.reshape(ops.transpose(ops.cast(kernel, "float32"), (2, 0, 1, 3)), (channels, kh * kw * filters))
    products = ops.matmul(ops.cast(x, "float32"), taps)  # [B, H, W, (row, col, F)]
    products = ops.pad(products, [[0, 0], [top, kh - 1 - top], [left, kw - 1 - left], [0, 0]])
    total = None
    for i in range(kh):
        for j in range(kw):
            start = (i * kw + j) * filters
            # rows i .. i + H - 1 of the padded H + kh - 1, as a slice that needs no static H
            tap = products[:, i : i + 1 - kh or None, j : j + 1 - kw or None, start : start + filters]
            total = tap if total is None else total + tap
    return ops.cast(total, x.dtype)
