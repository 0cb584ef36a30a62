"""Normalization layers by name, so recipes can choose them."""

from __future__ import annotations

import keras

NORMS = ("instance", "batch", "group", "none")


def make_norm(kind: str, name: str | None = None) -> keras.layers.Layer:
    """A normalization layer over the channel axis of NHWC maps.

    ``instance`` (default of the package: per image and channel, independent of the batch,
    so a replica's result does not depend on how the batch is split), ``batch``,
    ``group`` (8 groups) or ``none`` (identity).
    """
    if kind == "instance":
        return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)
    if kind == "group":
        return keras.layers.GroupNormalization(groups=8, epsilon=1e-5, name=name)
    if kind == "batch":
        return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)
    if kind == "none":
        return keras.layers.Identity(name=name)
    raise ValueError(f"unknown normalization {kind!r}; allowed: {', '.join(NORMS)}")


def conv_norm_act(x, filters: int, norm: str, name: str, strides: int = 1, kernel_size: int = 3,
                  activation: str = "leaky_relu"):
    """3x3 conv -> norm -> LeakyReLU(0.2) (or ReLU) on a symbolic NHWC tensor."""
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                            use_bias=norm == "none", name=f"{name}_conv")(x)
    x = make_norm(norm, name=f"{name}_norm")(x)
    if activation == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.2, name=f"{name}_act")(x)
    return keras.layers.Activation(activation, name=f"{name}_act")(x)
