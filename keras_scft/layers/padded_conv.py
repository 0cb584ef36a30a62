"""Conv2D whose few-channel input or output is zero-padded inside the op."""

from __future__ import annotations

import keras
from keras import ops


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
    """

    def __init__(self, *args, channel_multiple: int = 8, **kwargs):
        super().__init__(*args, **kwargs)
        if int(channel_multiple) < 1:
            raise ValueError(f"channel_multiple must be >= 1, got {channel_multiple}")
        self.channel_multiple = int(channel_multiple)

    def convolution_op(self, inputs, kernel):
        cin, cout = kernel.shape[-2], kernel.shape[-1]
        pad_in, pad_out = -cin % self.channel_multiple, -cout % self.channel_multiple
        if pad_in:
            inputs = ops.pad(inputs, [[0, 0]] * (len(inputs.shape) - 1) + [[0, pad_in]])
        if pad_in or pad_out:
            kernel = ops.pad(kernel, [[0, 0]] * (len(kernel.shape) - 2) + [[0, pad_in], [0, pad_out]])
        out = super().convolution_op(inputs, kernel)
        return out[..., :cout] if pad_out else out

    def get_config(self):
        return {**super().get_config(), "channel_multiple": self.channel_multiple}
