"""U-Net decoder from the feature grid back to a full-size colour image."""

from __future__ import annotations

import keras

from keras_scft.layers.initializers import HostGlorotUniform
from keras_scft.layers.norm import conv_norm_act, norm_act
from keras_scft.layers.padded_conv import ChannelPaddedConv2D
from keras_scft.layers.space_to_depth_conv import use_space_to_depth
from keras_scft.layers.upsample_conv import UpsampleConcatConv2D


def unet_decode(features, skips, widths, norm: str, name: str = "decoder"):
    """Decode on symbolic tensors.

    Args:
        features: [B, h, w, C] at the feature grid.
        skips: E_s maps, finest first ([B, H, W, c0], [B, H/2, W/2, c1], ...).
        widths: one width per stage, ``len(skips) + 1`` of them, coarsest first.

    Each stage doubles the resolution (nearest resize, then two 3x3 conv-norm-LeakyReLU on
    the concatenation with the matching skip; the first conv is one UpsampleConcatConv2D,
    which computes that without materializing the resize or the concatenation); resize + conv
    instead of Conv2DTranspose, whose backward is pathologically slow on XLA CPU.
    Output: [B, H, W, 3] in [-1, 1] (tanh, float32 even under mixed precision).
    """
    if len(widths) != len(skips) + 1:
        raise ValueError(f"decoder needs {len(skips) + 1} widths (one per stage), got {len(widths)}")
    x = conv_norm_act(features, widths[0], norm, name=f"{name}_in",
                      space_to_depth=use_space_to_depth(features.shape[-1], widths[0]))
    for stage, (skip, width) in enumerate(zip(reversed(skips), widths[1:])):
        x = UpsampleConcatConv2D(width, use_bias=norm == "none", name=f"{name}_s{stage}a_conv")([x, skip])
        x = norm_act(x, norm, name=f"{name}_s{stage}a")
        x = conv_norm_act(x, width, norm, name=f"{name}_s{stage}b", space_to_depth=use_space_to_depth(width, width))
    # 3 output channels: padded to 8 (or, on space-to-depth blocks, 12 to 16) for tensor-core kernels.
    blocks = use_space_to_depth(x.shape[-1], 3)
    x = ChannelPaddedConv2D(3, 3, padding="same", channel_multiple=16 if blocks else 8, space_to_depth=blocks,
                            kernel_initializer=HostGlorotUniform(), name=f"{name}_rgb")(x)
    return keras.layers.Activation("tanh", dtype="float32", name="image")(x)
