"""Average and max pooling over non-overlapping blocks, with cheap gradients."""

from __future__ import annotations

import keras
from keras import ops


def _blocks(x, size: int):
    """[B, H, W, C] -> [B, H // size, size, W // size, size, C] (partial blocks dropped)."""
    shape = ops.shape(x)
    rows, cols = shape[1] // size, shape[2] // size
    x = x[:, : rows * size, : cols * size, :]
    return ops.reshape(x, (-1, rows, size, cols, size, shape[3]))


class _BlockPooling2D(keras.layers.Layer):
    """Reduce non-overlapping ``size`` x ``size`` blocks of NHWC maps with ``reduce``."""

    reduce = None  # ops.mean or ops.max, set by the subclasses

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        if int(size) < 1:
            raise ValueError(f"{type(self).__name__} size must be >= 1, got {size}")
        self.size = int(size)

    def call(self, x):
        return self.reduce(_blocks(x, self.size), axis=(2, 4))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else h // self.size, None if w is None else w // self.size, c)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package="keras_scft")
class BlockAveragePooling2D(_BlockPooling2D):
    """Mean over non-overlapping ``size`` x ``size`` blocks of NHWC maps.

    Computes what ``keras.layers.AveragePooling2D(size)`` computes (valid padding: rows and
    columns past the last whole block are dropped), as a reshape and a mean. The gradient is
    then a broadcast; the reduce_window of ``AveragePooling2D`` has a gradient that sums a
    dilated window of size x size cotangents for every input pixel (XLA: size**2 reads per
    pixel, the most expensive part of the encoders' backward pass at 16 x 16).

    Input [B, H, W, C] -> output [B, H // size, W // size, C], same dtype.
    """

    reduce = staticmethod(ops.mean)


@keras.saving.register_keras_serializable(package="keras_scft")
class BlockMaxPooling2D(_BlockPooling2D):
    """Max over non-overlapping ``size`` x ``size`` blocks of NHWC maps.

    The values of ``keras.layers.MaxPooling2D(size)`` (valid padding), as a reshape and a
    max. Its gradient is an elementwise mask that XLA fuses, instead of the
    ``select_and_scatter`` of MaxPooling2D (a separate, slow kernel on the GPU). Where
    several entries of a block tie for the max, the gradient is shared equally among them
    (MaxPooling2D gives it all to the first); both are gradients of the max.

    Input [B, H, W, C] -> output [B, H // size, W // size, C], same dtype.
    """

    reduce = staticmethod(ops.max)
