"""The encoders E_s (sketch) and E_r (reference) and their multi-level feature V."""

from __future__ import annotations

import keras

from keras_scft.layers.norm import conv_norm_act
from keras_scft.layers.pooling import BlockAveragePooling2D
from keras_scft.layers.space_to_depth_conv import use_space_to_depth

DEFAULT_WIDTHS = (16, 16, 32, 32, 64, 64, 128, 128, 256, 256)
DEFAULT_DOWNSAMPLE = (2, 4, 6, 8)


def check_layout(widths, downsample) -> None:
    """Raise a ValueError naming the problem unless ``downsample`` (0-based indices of the
    stride-2 blocks) fits the ``widths`` of the encoder blocks."""
    if not widths or any(i <= 0 or i >= len(widths) for i in downsample):
        raise ValueError(f"downsample block indices {list(downsample)} (0-based, the stride-2 blocks) must lie in "
                         f"1..{len(widths) - 1} for the {len(widths)} encoder blocks of widths {list(widths)}")


@keras.saving.register_keras_serializable(package="keras_scft")
class SCFTEncoder(keras.Model):
    """Conv encoder whose every block output is pooled to the last grid and concatenated.

    ``len(widths)`` blocks of 3x3 conv -> norm -> LeakyReLU(0.2); the blocks listed in
    ``downsample`` (0-based) have stride 2. Each block's output is average-pooled to the final
    grid (H / 2**len(downsample)) and all are concatenated channel-wise into
    V [B, H/s, W/s, sum(widths)] (992 channels for the defaults, s = 16).

    Input: images float [B, H, W, channels] in [-1, 1]; H and W multiples of s.
    Output: a list ``[V, skip_0, ..., skip_{n-1}]`` where skip_k is the last block output at
    resolution H / 2**k (the U-Net decoder's skip connections), coarse ones last.
    """

    def __init__(self, channels: int, widths=DEFAULT_WIDTHS, downsample=DEFAULT_DOWNSAMPLE,
                 norm: str = "instance", name: str | None = None, **kwargs):
        widths, downsample = tuple(int(w) for w in widths), tuple(int(i) for i in downsample)
        check_layout(widths, downsample)
        inputs = keras.Input((None, None, channels), name="images")
        x = inputs
        outputs, skips, level = [], [], 0
        factor = 2 ** len(downsample)
        for i, width in enumerate(widths):
            if i in downsample:
                skips.append(x)
                level += 1
            strides = 2 if i in downsample else 1
            blocks = use_space_to_depth(x.shape[-1], width, strides)
            # A 3-channel input conv runs faster with its channels padded (H100, 2026-11-27: to 8,
            # 0.55 -> 0.50 ms per batch of 64; on space-to-depth blocks, 12 to 16); 1 channel does not.
            multiple = (16 if blocks else 8) if i == 0 and channels > 1 else 1
            x = conv_norm_act(x, width, norm, name=f"block{i}", strides=strides,
                              channel_multiple=multiple, space_to_depth=blocks)
            pool = factor // 2**level
            outputs.append(
                BlockAveragePooling2D(pool, name=f"pool{i}")(x) if pool > 1 else x
            )
        features = keras.layers.Concatenate(name="features")(outputs)
        super().__init__(inputs=inputs, outputs=[features, *skips], name=name, **kwargs)
        self.channels = channels
        self.widths = widths
        self.downsample = downsample
        self.norm = norm

    @property
    def feature_dim(self) -> int:
        """d_v: channels of V."""
        return sum(self.widths)

    @property
    def stride(self) -> int:
        """Downsampling factor between the input and V."""
        return 2 ** len(self.downsample)

    def get_config(self):
        return {"channels": self.channels, "widths": list(self.widths),
                "downsample": list(self.downsample), "norm": self.norm, "name": self.name,
                "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
