"""Conditional PatchGAN discriminator D(image, sketch) with spectral normalization."""

from __future__ import annotations

import keras

from keras_scft.layers.initializers import HostGlorotUniform
from keras_scft.layers.spectral_norm import SpectralNormConv2D

DEFAULT_D_WIDTHS = (64, 128, 256, 512)


@keras.saving.register_keras_serializable(package="keras_scft")
class PatchDiscriminator(keras.Model):
    """PatchGAN on concat(image, sketch).

    4x4 convs, stride 2 for all but the last width, LeakyReLU(0.2), every conv spectrally
    normalized (:class:`SpectralNormConv2D`); a final 4x4 conv gives one logit per patch.

    Inputs: ``{"image": float [B, H, W, 3], "sketch": float [B, H, W, 1]}``, both in [-1, 1].
    Output: logits float32 [B, H/2**(n-1), W/2**(n-1), 1] (n = len(widths)).
    """

    def __init__(self, widths=DEFAULT_D_WIDTHS, spectral_norm: bool = True, name: str | None = None, **kwargs):
        widths = tuple(int(w) for w in widths)
        image = keras.Input((None, None, 3), name="image")
        sketch = keras.Input((None, None, 1), name="sketch")
        x = keras.layers.Concatenate(name="condition")([image, sketch])

        def conv(filters, strides, layer_name):
            layer_class = SpectralNormConv2D if spectral_norm else keras.layers.Conv2D
            return layer_class(filters, 4, strides=strides, padding="same", kernel_initializer=HostGlorotUniform(),
                               name=layer_name)

        for i, width in enumerate(widths):
            x = conv(width, 2 if i < len(widths) - 1 else 1, f"conv{i}")(x)
            x = keras.layers.LeakyReLU(negative_slope=0.2, name=f"act{i}")(x)
        x = conv(1, 1, "logits")(x)
        logits = keras.layers.Activation("linear", dtype="float32", name="patch_logits")(x)
        super().__init__(inputs={"image": image, "sketch": sketch}, outputs=logits, name=name, **kwargs)
        self.widths = widths
        self.spectral_norm = spectral_norm

    def get_config(self):
        return {"widths": list(self.widths), "spectral_norm": self.spectral_norm, "name": self.name,
                "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_discriminator(widths=DEFAULT_D_WIDTHS, spectral_norm: bool = True) -> PatchDiscriminator:
    """The default conditional PatchGAN (see :class:`PatchDiscriminator`)."""
    return PatchDiscriminator(widths=widths, spectral_norm=spectral_norm, name="discriminator")
