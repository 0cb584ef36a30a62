"""Residual blocks applied to the SCFT output c at the feature grid."""

from __future__ import annotations

import keras

from keras_scft.layers.filter_major_conv import FilterMajorConv2D
from keras_scft.layers.initializers import HostGlorotUniform
from keras_scft.layers.norm import make_norm


@keras.saving.register_keras_serializable(package="keras_scft")
class ResidualBlock(keras.layers.Layer):
    """x + norm(conv(relu(norm(conv(x))))) with 3x3 convs at the input width. Same shape out.

    The convs keep their kernels output-channel-major (:class:`FilterMajorConv2D`: the
    layout of cuDNN's weight gradients, so Adam updates these 71M-parameter kernels in
    place); files saved with ``Conv2D`` kernels load into them.
    """

    def __init__(self, norm: str = "instance", **kwargs):
        super().__init__(**kwargs)
        self.norm = norm

    def build(self, input_shape):
        channels = input_shape[-1]
        bias = self.norm == "none"
        self.conv1 = FilterMajorConv2D(channels, 3, padding="same", use_bias=bias,
                                       kernel_initializer=HostGlorotUniform(), name="conv1")
        self.norm1 = make_norm(self.norm, name="norm1")
        self.conv2 = FilterMajorConv2D(channels, 3, padding="same", use_bias=bias,
                                       kernel_initializer=HostGlorotUniform(), name="conv2")
        self.norm2 = make_norm(self.norm, name="norm2")
        self.conv1.build(input_shape)
        self.norm1.build(input_shape)
        self.conv2.build(input_shape)
        self.norm2.build(input_shape)

    def call(self, x, training=None):
        y = keras.ops.relu(self.norm1(self.conv1(x), training=training))
        return x + self.norm2(self.conv2(y), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["norm"] = self.norm
        return config
