"""3x3 stride-1 convolution computed on the 2x2 space-to-depth rearrangement of its input."""

from __future__ import annotations

import numpy as np
from keras import ops

# Output row 2i + a (phase a) of a 3x3 "same" convolution reads input rows 2i + a - 1 .. 2i + a + 1,
# i.e. input block i + r - 1 (r = 0, 1, 2) at phase p through kernel row k = 2(r - 1) + p - a + 1
# when that lies in 0..2: _TAPS[a, r, p, k] = 1. Columns likewise. Zero padding of the image by
# one pixel is zero padding of the block grid by one block.
_TAPS = np.zeros((2, 3, 2, 3), dtype="float32")
for _a in range(2):
    for _r in range(3):
        for _p in range(2):
            _k = 2 * (_r - 1) + _p - _a + 1
            if 0 <= _k <= 2:
                _TAPS[_a, _r, _p, _k] = 1.0
del _a, _r, _p, _k


def space_to_depth(x, block: int = 2):
    """[B, H, W, C] -> [B, H/block, W/block, block*block*C]; channel order (row phase, col phase, c)."""
    b, h, w, c = ops.shape(x)
    x = ops.reshape(x, (b, h // block, block, w // block, block, c))
    return ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (b, h // block, w // block, block * block * c))


def depth_to_space(x, block: int = 2):
    """Inverse of :func:`space_to_depth`: [B, H, W, block*block*C] -> [B, block*H, block*W, C]."""
    b, h, w, c = ops.shape(x)
    c //= block * block
    x = ops.reshape(x, (b, h, w, block, block, c))
    return ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (b, h * block, w * block, c))


def space_to_depth_kernel(kernel):
    """A 3x3 kernel [3, 3, C, F] as the 3x3 kernel [3, 3, 4C, 4F] of the same convolution on
    2x2 space-to-depth blocks (input and output channels ordered (row phase, col phase, c))."""
    c, f = kernel.shape[-2], kernel.shape[-1]
    taps = ops.cast(_TAPS, kernel.dtype)
    big = ops.einsum("arpk,bcql,klio->rcpqiabo", taps, taps, kernel)
    return ops.reshape(big, (3, 3, 4 * c, 4 * f))


def _same_conv(x, kernel):
    return ops.conv(x, kernel, padding="same")


def space_to_depth_conv(x, kernel, conv=_same_conv):
    """``conv3x3_same_stride1(x, kernel)`` as a conv of the 2x2 space-to-depth blocks of x.

    x [B, H, W, C] with even H and W, kernel [3, 3, C, F] -> [B, H, W, F]. The convolution runs
    on [B, H/2, W/2, 4C] with a [3, 3, 4C, 4F] kernel (zeros where a tap falls outside the
    original 3x3 window: 16/9 the multiply-adds, but 4x the channels, which tensor-core kernels
    need at 1-32 channels) and is rearranged depth-to-space. Same sums, other order.
    ``conv(inputs, kernel)`` does the inner "same" convolution (default ``keras.ops.conv``).
    """
    return depth_to_space(conv(space_to_depth(x), space_to_depth_kernel(kernel)))


# Largest channel count (input or output) for which the generator computes a 3x3 stride-1 conv on
# space-to-depth blocks. H100, 2026-11-27 (benchmarks/conv_variants.py, 256x256): faster at 1-16
# channels, 3x slower at 64 -> 64 (the VGG's second conv); 32 not measured. Also the most input
# channels for which D's stride-2 convs run as strided_conv_on_blocks (H200, 2026-11-28: faster
# at 4, slower at 64 and 128).
MAX_CHANNELS = 16


def use_space_to_depth(channels: int, filters: int, strides: int = 1, kernel_size: int = 3) -> bool:
    """Whether the generator runs this convolution on space-to-depth blocks (see MAX_CHANNELS)."""
    return kernel_size == 3 and strides == 1 and max(channels, filters) <= MAX_CHANNELS


def strided_block_kernel(kernel):
    """A [2m, 2m, C, F] kernel as the [m, m, 4C, F] kernel of the same stride-2 convolution run
    at stride 1 on 2x2 space-to-depth blocks (input channels ordered (row phase, col phase, c))."""
    k, _, c, f = kernel.shape
    m = k // 2
    kernel = ops.reshape(kernel, (m, 2, m, 2, c, f))
    return ops.reshape(ops.transpose(kernel, (0, 2, 1, 3, 4, 5)), (m, m, 4 * c, f))


def strided_conv_on_blocks(x, kernel):
    """``keras.ops.conv(x, kernel, strides=2, padding="same")`` for an even kernel [2m, 2m, C, F]
    and even H, W, computed as a stride-1 m x m "valid" convolution of the 2x2 space-to-depth
    blocks of x zero-padded by m - 1 pixels on each side: x [B, H, W, C] -> [B, H/2, W/2, F].

    Same multiply-adds, other order; the input gradient is then a stride-1 convolution (cuDNN's
    strided backward-data kernels are slower) and 1-4 input channels become 4-16.
    """
    m = kernel.shape[0] // 2
    x = ops.pad(x, [[0, 0], [m - 1, m - 1], [m - 1, m - 1], [0, 0]])
    return ops.conv(space_to_depth(x), strided_block_kernel(kernel), padding="valid")
