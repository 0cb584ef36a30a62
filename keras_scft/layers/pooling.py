"""Average pooling over non-overlapping blocks, with a cheap gradient."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_scft")
class BlockAveragePooling2D(keras.layers.Layer):
    """Mean over non-overlapping ``size`` x ``size`` blocks of NHWC maps.

    Computes what ``keras.layers.AveragePooling2D(size)`` computes (valid padding: rows and
    columns past the last whole block are dropped), as a reshape and a mean. The gradient is
    then a broadcast; the reduce_window of ``AveragePooling2D`` has a gradient that sums a
    dilated window of size x size cotangents for every input pixel (XLA: size**2 reads per
    pixel, the most expensive part of the encoders' backward pass at 16 x 16).

    Input [B, H, W, C] -> output [B, H // size, W // size, C], same dtype.
    """

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        if int(size) < 1:
            raise ValueError(f"BlockAveragePooling2D size must be >= 1, got {size}")
        self.size = int(size)

    def call(self, x):
        s = self.size
        shape = ops.shape(x)
        rows, cols = shape[1] // s, shape[2] // s
        x = x[:, : rows * s, : cols * s, :]
        x = ops.reshape(x, (-1, rows, s, cols, s, shape[3]))
        return ops.mean(x, axis=(2, 4))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else h // self.size, None if w is None else w // self.size, c)

    def get_config(self):
        return {**super().get_config(), "size": self.size}
