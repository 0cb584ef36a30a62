"""Stride-1 convolution as one matrix product over its input's patches (im2col)."""

from __future__ import annotations

import keras
from keras import ops


def patch_matmul_conv(inputs, kernel, padding: str = "same", multiple: int = 8):
    """``keras.ops.conv(inputs, kernel, padding=padding)`` (stride 1, channels last) as one matmul.

    inputs [B, H, W, C], kernel [kh, kw, C, F] -> [B, H', W', F] (H' = H for "same", H - kh + 1
    for "valid"). The kh * kw shifted views of the (zero-padded) input are stacked on the channel
    axis, in the kernel's (row, column, channel) order, zero-padded to a multiple of ``multiple``
    channels, and multiplied by the kernel as a [kh * kw * C (padded), F] matrix: the same sums.

    For convolutions with very few input channels at high resolution (the VGG's 3 -> 64 first
    layer at 256 px), which cuDNN runs on slow kernels: the patches are few (27 values a pixel)
    and the product is a plain memory-bound matmul; its input gradient is a matmul and a sum of
    shifted slices, with no transposed convolution.
    """
    kh, kw, channels, filters = kernel.shape
    if padding == "same":
        # Keras/TF "same" at stride 1: (k - 1) // 2 before, the rest after.
        pads = [(k - 1) // 2 for k in (kh, kw)]
        inputs = ops.pad(inputs, [[0, 0], [pads[0], kh - 1 - pads[0]], [pads[1], kw - 1 - pads[1]], [0, 0]])
    elif padding != "valid":
        raise ValueError(f'padding must be "same" or "valid", got {padding!r}')
    shape = ops.shape(inputs)
    height, width = shape[1] - kh + 1, shape[2] - kw + 1
    views = [inputs[:, i : i + height, j : j + width, :] for i in range(kh) for j in range(kw)]
    depth = kh * kw * channels
    extra = -depth % multiple
    if extra:
        views.append(ops.zeros((shape[0], height, width, extra), dtype=inputs.dtype))
    patches = ops.concatenate(views, axis=-1)
    matrix = ops.reshape(kernel, (depth, filters))
    if extra:
        matrix = ops.pad(matrix, [[0, extra], [0, 0]])
    out = ops.matmul(ops.reshape(patches, (-1, depth + extra)), matrix)
    return ops.reshape(out, (shape[0], height, width, filters))


@keras.saving.register_keras_serializable(package="keras_scft")
class PatchMatmulConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (stride 1, no dilation or groups, channels last) computed as one
    matmul over its input's patches (:func:`patch_matmul_conv`): the same function and the same
    variables (shapes and names).

    Used for the VGG's first convolution (3 -> 64 channels at full resolution).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        plain = (self.strides == (1, 1) and self.dilation_rate == (1, 1) and self.groups == 1
                 and self.data_format == "channels_last")
        if not plain:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} computes stride-1 convolutions without dilation or "
                f"groups in channels_last; got strides {self.strides}, dilation_rate {self.dilation_rate}, "
                f"groups {self.groups}, data_format {self.data_format!r}")

    def convolution_op(self, inputs, kernel):
        return patch_matmul_conv(inputs, kernel, padding=self.padding)
