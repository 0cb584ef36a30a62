"""Conv2D whose few-channel input or output is zero-padded inside the op, optionally on 2x2
space-to-depth blocks."""

from __future__ import annotations

import keras
from keras import ops

from keras_scft.layers.space_to_depth_conv import space_to_depth_conv


def channel_padded_conv(inputs, kernel, multiple: int, conv):
    """``conv(inputs, kernel)`` with input and output channels zero-padded up to a multiple of
    ``multiple`` inside, the padded outputs dropped: the same result. inputs [..., C], kernel
    [..., C, F] -> [..., F]."""
    cin, cout = kernel.shape[-2], kernel.shape[-1]
    pad_in, pad_out = -cin % multiple, -cout % multiple
    if pad_in:
        inputs = ops.pad(inputs, [[0, 0]] * (len(inputs.shape) - 1) + [[0, pad_in]])
    if pad_in or pad_out:
        kernel = ops.pad(kernel, [[0, 0]] * (len(kernel.shape) - 2) + [[0, pad_in], [0, pad_out]])
    out = conv(inputs, kernel)
    return out[..., :cout] if pad_out else out


@keras.saving.register_keras_serializable(package="keras_scft")
class ChannelPaddedConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` that pads input and output channels with zeros up to a multiple
    of ``channel_multiple`` for the convolution itself, then drops the padded outputs.

    For the 3-channel image convolutions (the reference encoder's first block, the RGB
    output): GPU convolution libraries run those on slow non-tensor-core kernels; with 8
    channels they get tensor-core ones (H100, 2026-11-27: the RGB output conv 0.58 -> 0.40 ms
    per batch of 64. Not everywhere: a 1-channel input and the VGG's first conv, whose input
    gradient grew, were slower padded). The zeros add nothing, so the result is Conv2D's;
    the variables have Conv2D's shapes and names.

    ``space_to_depth=True`` (3x3, stride 1, "same" only) computes the convolution on 2x2
    space-to-depth blocks (:func:`~keras_scft.layers.space_to_depth_conv.space_to_depth_conv`:
    4x the channels, so tensor-core kernels at 1-16 channels) and pads *those* channels.
    Inputs of odd height or width (known when traced) take the plain path.
    """

    def __init__(self, *args, channel_multiple: int = 8, space_to_depth: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if int(channel_multiple) < 1:
            raise ValueError(f"channel_multiple must be >= 1, got {channel_multiple}")
        self.channel_multiple = int(channel_multiple)
        self.space_to_depth = bool(space_to_depth)
        if self.space_to_depth:
            plain = (self.kernel_size == (3, 3) and self.strides == (1, 1) and self.padding == "same"
                     and self.dilation_rate == (1, 1) and self.groups == 1
                     and self.data_format == "channels_last")
            if not plain:
                raise ValueError(
                    f"{type(self).__name__} {self.name!r}: space_to_depth needs a 3x3 kernel, stride 1, "
                    f"padding 'same', no dilation or groups and channels_last; got kernel_size "
                    f"{self.kernel_size}, strides {self.strides}, padding {self.padding!r}, dilation_rate "
                    f"{self.dilation_rate}, groups {self.groups}, data_format {self.data_format!r}")

    def _padded_convolution(self, inputs, kernel):
        return channel_padded_conv(inputs, kernel, self.channel_multiple, super().convolution_op)

    def convolution_op(self, inputs, kernel):
        height, width = inputs.shape[1], inputs.shape[2]
        odd = (height is not None and height % 2) or (width is not None and width % 2)
        if self.space_to_depth and not odd:
            return space_to_depth_conv(inputs, kernel, conv=self._padded_convolution)
        return self._padded_convolution(inputs, kernel)

    def get_config(self):
        return {**super().get_config(), "channel_multiple": self.channel_multiple,
                "space_to_depth": self.space_to_depth}


@keras.saving.register_keras_serializable(package="keras_scft")
class SpaceToDepthConv2D(ChannelPaddedConv2D):
    """A 3x3 stride-1 "same" ``Conv2D`` computed on 2x2 space-to-depth blocks (see
    :class:`ChannelPaddedConv2D`; ``channel_multiple`` defaults to 1 here).

    For the 1-16 channel convolutions at full resolution (H100, 2026-11-27, forward + backward
    at batch 32: 16 -> 16 channels 0.70 -> 0.51 ms, 1 -> 16 0.84 -> 0.44 ms). Its own class
    (not ``ChannelPaddedConv2D(space_to_depth=True)``) because ``.keras`` files address weights
    by class name: where it replaced ``Conv2D``, older files store the weights under Conv2D's.
    """

    def __init__(self, *args, channel_multiple: int = 1, space_to_depth: bool = True, **kwargs):
        if not space_to_depth:
            raise ValueError(f"{type(self).__name__} always runs on space-to-depth blocks; "
                             "use keras.layers.Conv2D for the plain convolution")
        super().__init__(*args, channel_multiple=channel_multiple, space_to_depth=True, **kwargs)
