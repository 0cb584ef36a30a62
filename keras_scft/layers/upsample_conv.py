"""3x3 convolution of (nearest 2x upsampling of x, concatenated with a skip), without either."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_scft.layers.initializers import HostGlorotUniform
from keras_scft.layers.space_to_depth_conv import (depth_to_space, space_to_depth,
                                                   space_to_depth_kernel, use_space_to_depth)

# Nearest 2x upsampling followed by a 3x3 "same" convolution: output row 2i + a reads the
# low-resolution rows i - 1, i, i + 1 (index r = 0, 1, 2) through kernel rows k with
# _PHASE_TAPS[a, r, k] = 1. Row phase 0: r0 <- k0, r1 <- k1 + k2; phase 1: r1 <- k0 + k1, r2 <- k2.
# Columns likewise. Zero padding of the upsampled map is zero padding of the low-resolution one.
_PHASE_TAPS = np.array([[[1, 0, 0], [0, 1, 1], [0, 0, 0]],
                        [[0, 0, 0], [1, 1, 0], [0, 0, 1]]], dtype="float32")


def upsample_concat_conv(x, skip, kernel, skip_blocks: bool = False):
    """``conv3x3_same(concat([nearest_upsample_2x(x), skip]), kernel)`` without the upsampled map
    or the concatenation.

    x [B, H, W, C_x], skip [B, 2H, 2W, C_skip], kernel [3, 3, C_x + C_skip, F] (x's channels
    first) -> [B, 2H, 2W, F]. The x part runs at x's resolution as one 3x3 conv with 4F
    outputs (the four sub-pixel phases, kernels summed from the original taps), rearranged
    depth-to-space; the skip part is an ordinary conv; the two are added. With
    ``skip_blocks`` the skip part runs on the skip's 2x2 space-to-depth blocks, whose
    output has the x part's layout: the two are added before the one depth-to-space.
    """
    cx, filters = x.shape[-1], kernel.shape[-1]
    taps = ops.cast(_PHASE_TAPS, kernel.dtype)
    # [3 (row r), 3 (col c), C_x, 2 (row phase a), 2 (col phase b), F]
    phases = ops.einsum("ark,bcl,klio->rciabo", taps, taps, kernel[:, :, :cx])
    low = ops.conv(x, ops.reshape(phases, (3, 3, cx, 4 * filters)), padding="same")
    if skip_blocks:
        skip_kernel = space_to_depth_kernel(kernel[:, :, cx:])
        return depth_to_space(low + ops.conv(space_to_depth(skip), skip_kernel, padding="same"))
    return depth_to_space(low) + ops.conv(skip, kernel[:, :, cx:], padding="same")


@keras.saving.register_keras_serializable(package="keras_scft")
class UpsampleConcatConv2D(keras.layers.Layer):
    """``Conv2D(filters, 3, padding="same")(concat([UpSampling2D(2)(x), skip]))``, computed
    without the upsampled map or the concatenation (the U-Net decoder's first conv per stage).

    The kernel is the one that Conv2D would hold ([3, 3, C_x + C_skip, filters], x's channels
    first); see :func:`upsample_concat_conv`. Same function, summation order differs.

    Inputs: ``[x, skip]``, x [B, H, W, C_x], skip [B, 2H, 2W, C_skip].
    Output: [B, 2H, 2W, filters].
    """

    def __init__(self, filters: int, use_bias: bool = True, kernel_initializer=None,
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = (HostGlorotUniform() if kernel_initializer is None
                                   else keras.initializers.get(kernel_initializer))
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        x_shape, skip_shape = input_shape
        channels = int(x_shape[-1]) + int(skip_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(3, 3, channels, self.filters),
                                      initializer=self.kernel_initializer)
        self.bias = (self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)
                     if self.use_bias else None)

    def call(self, inputs):
        x, skip = inputs
        blocks = use_space_to_depth(skip.shape[-1], self.filters)
        out = upsample_concat_conv(x, skip, ops.cast(self.kernel, self.compute_dtype), skip_blocks=blocks)
        return out + self.bias if self.use_bias else out

    def compute_output_shape(self, input_shape):
        x_shape, skip_shape = input_shape
        return (*skip_shape[:3], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer)}
