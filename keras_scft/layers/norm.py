"""Normalization layers by name, so recipes can choose them."""

from __future__ import annotations

import functools

import keras

from keras_scft.layers.initializers import HostGlorotUniform
from keras_scft.layers.instance_norm import InstanceNormalization
from keras_scft.layers.padded_conv import ChannelPaddedConv2D, SpaceToDepthConv2D

NORMS = ("instance", "batch", "group", "none")


def make_norm(kind: str, name: str | None = None) -> keras.layers.Layer:
    """A normalization layer over the channel axis of NHWC maps.

    ``instance`` (default of the package: per image and channel, independent of the batch,
    so a replica's result does not depend on how the batch is split; see
    :class:`~keras_scft.layers.instance_norm.InstanceNormalization`), ``batch``,
    ``group`` (8 groups) or ``none`` (identity).
    """
    if kind == "instance":
        return InstanceNormalization(epsilon=1e-5, name=name)
    if kind == "group":
        return keras.layers.GroupNormalization(groups=8, epsilon=1e-5, name=name)
    if kind == "batch":
        return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)
    if kind == "none":
        return keras.layers.Identity(name=name)
    raise ValueError(f"unknown normalization {kind!r}; allowed: {', '.join(NORMS)}")


def conv_norm_act(x, filters: int, norm: str, name: str, strides: int = 1, kernel_size: int = 3,
                  activation: str = "leaky_relu", channel_multiple: int = 1, space_to_depth: bool = False):
    """3x3 conv -> norm -> LeakyReLU(0.2) (or ReLU) on a symbolic NHWC tensor.

    ``channel_multiple`` > 1 pads the conv's channels inside the op and ``space_to_depth``
    runs it on 2x2 space-to-depth blocks (see ChannelPaddedConv2D); the function is the same.
    """
    if space_to_depth and channel_multiple == 1:
        conv = SpaceToDepthConv2D
    elif space_to_depth or channel_multiple > 1:
        conv = functools.partial(ChannelPaddedConv2D, channel_multiple=channel_multiple,
                                 space_to_depth=space_to_depth)
    else:
        conv = keras.layers.Conv2D
    x = conv(filters, kernel_size, strides=strides, padding="same", use_bias=norm == "none",
             kernel_initializer=HostGlorotUniform(), name=f"{name}_conv")(x)
    return norm_act(x, norm, name, activation)


def norm_act(x, norm: str, name: str, activation: str = "leaky_relu"):
    """norm -> LeakyReLU(0.2) (or another activation) on a symbolic NHWC tensor."""
    x = make_norm(norm, name=f"{name}_norm")(x)
    if activation == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.2, name=f"{name}_act")(x)
    return keras.layers.Activation(activation, name=f"{name}_act")(x)
