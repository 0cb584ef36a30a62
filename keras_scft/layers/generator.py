"""The SCFT generator: two encoders -> SCFT attention -> residual blocks -> U-Net decoder."""

from __future__ import annotations

import keras

from keras_scft.layers.decoder import unet_decode
from keras_scft.layers.encoder import DEFAULT_DOWNSAMPLE, DEFAULT_WIDTHS, SCFTEncoder, check_layout
from keras_scft.layers.residual import ResidualBlock
from keras_scft.layers.scft import SCFTAttention, check_temperature


@keras.saving.register_keras_serializable(package="keras_scft")
class SCFTGenerator(keras.Model):
    """Colorizes a sketch with the colours of a reference.

    Inputs: ``{"sketch": float [B, H, W, 1], "reference": float [B, H, W, 3]}`` in [-1, 1]
    (white = 1), H and W multiples of ``2 ** len(downsample)`` (16 by default).
    Outputs: ``{"image": float32 [B, H, W, 3] in [-1, 1],
    "attention_logits": [B, N, N]}`` with N = (H/16) * (W/16): the scaled SCFT scores
    (sketch positions x reference positions, row-major).

    Args:
        widths, downsample, norm: encoder layout (both encoders); see :class:`SCFTEncoder`.
        residual_blocks: number of residual blocks after SCFT (plus an outer skip).
        decoder_widths: one per decoder stage, coarsest first; default mirrors the encoder.
        stop_gradient_attention, attention_temperature: see :class:`SCFTAttention` (its
            ``temperature``; also settable later through :attr:`attention_temperature`).
        image_size: the (height, width) it was trained at, if known; inference resizes
            inputs to it by default (the network itself accepts any multiple of 16).
    """

    def __init__(self, widths=DEFAULT_WIDTHS, downsample=DEFAULT_DOWNSAMPLE, norm: str = "instance",
                 residual_blocks: int = 4, decoder_widths=None, stop_gradient_attention: bool = False,
                 image_size=None, attention_temperature: float = 1.0, name: str | None = None, **kwargs):
        widths, downsample = tuple(int(w) for w in widths), tuple(int(i) for i in downsample)
        check_layout(widths, downsample)
        if decoder_widths is None:
            decoder_widths = (widths[-1],) + tuple(widths[i - 1] for i in reversed(downsample))
        decoder_widths = tuple(int(w) for w in decoder_widths)
        sketch = keras.Input((None, None, 1), name="sketch")
        reference = keras.Input((None, None, 3), name="reference")
        sketch_encoder = SCFTEncoder(1, widths, downsample, norm, name="sketch_encoder")
        reference_encoder = SCFTEncoder(3, widths, downsample, norm, name="reference_encoder")
        v_s, *skips = sketch_encoder(sketch)
        v_r = reference_encoder(reference)[0]
        attention = SCFTAttention(stop_gradient_attention, attention_temperature, name="scft")
        c, logits = attention([v_s, v_r])
        x = c
        for i in range(residual_blocks):
            x = ResidualBlock(norm, name=f"residual{i}")(x)
        if residual_blocks:
            x = keras.layers.Add(name="residual_skip")([x, c])
        image = unet_decode(x, skips, decoder_widths, norm)
        logits = keras.layers.Activation("linear", dtype="float32", name="attention_logits")(logits)
        super().__init__(inputs={"sketch": sketch, "reference": reference},
                         outputs={"image": image, "attention_logits": logits}, name=name, **kwargs)
        self.widths = widths
        self.downsample = downsample
        self.norm = norm
        self.residual_blocks = int(residual_blocks)
        self.decoder_widths = decoder_widths
        self.stop_gradient_attention = bool(stop_gradient_attention)
        self.image_size = None if image_size is None else tuple(int(v) for v in image_size)

    def attention_maps(self, sketch, reference):
        """SCFT attention alpha for a batch: float32 [B, N, N], rows (sketch cells) sum to 1.

        Inputs as for ``call``; N = (H / stride) * (W / stride), row-major cells.
        """
        v_s = self.get_layer("sketch_encoder")(sketch)[0]
        v_r = self.get_layer("reference_encoder")(reference)[0]
        return self.get_layer("scft")([v_s, v_r], return_attention=True)[2]

    @property
    def attention_temperature(self) -> float:
        """The SCFT softmax temperature (see :class:`SCFTAttention`; 1 unless changed). Setting
        it drops the traced predict function, so the next ``predict`` uses the new value; it
        is saved with the model."""
        return self.get_layer("scft").temperature

    @attention_temperature.setter
    def attention_temperature(self, value: float) -> None:
        self.get_layer("scft").temperature = check_temperature(value)
        self.predict_function = None

    @property
    def stride(self) -> int:
        """Input size / feature grid size (16 by default)."""
        return 2 ** len(self.downsample)

    @property
    def feature_dim(self) -> int:
        """d_v, the channels of V (992 by default)."""
        return sum(self.widths)

    def get_config(self):
        return {"widths": list(self.widths), "downsample": list(self.downsample), "norm": self.norm,
                "residual_blocks": self.residual_blocks, "decoder_widths": list(self.decoder_widths),
                "stop_gradient_attention": self.stop_gradient_attention,
                "image_size": list(self.image_size) if self.image_size else None,
                "attention_temperature": self.attention_temperature, "name": self.name,
                "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_generator(widths=DEFAULT_WIDTHS, downsample=DEFAULT_DOWNSAMPLE, norm: str = "instance",
                    residual_blocks: int = 4, decoder_widths=None,
                    stop_gradient_attention: bool = False, image_size=None,
                    attention_temperature: float = 1.0) -> SCFTGenerator:
    """The SCFT generator with the paper's layout by default (see :class:`SCFTGenerator`)."""
    return SCFTGenerator(widths, downsample, norm, residual_blocks, decoder_widths,
                         stop_gradient_attention, image_size, attention_temperature, name="generator")
