"""Analytic FLOP counts of the networks (multiply-add = 2 FLOPs), from layer output shapes.

``compiled.cost_analysis()`` does not count cuDNN convolutions reliably on the GPU, so the
benchmarks report these numbers (cross-checked against XLA's CPU count in
tests/test_benchmarks_flops.py).
"""

from __future__ import annotations

import math

import keras
import numpy as np

from keras_scft.layers.scft import SCFTAttention
from keras_scft.layers.upsample_conv import UpsampleConcatConv2D

# UpsampleConcatConv2D counts as the conv on the upsampled concatenation it computes (its
# sub-pixel form does the same multiply-adds, a share of them with zero taps).
_CONVS = (keras.layers.Conv2D, UpsampleConcatConv2D)


def _layer_flops(layer, inputs, output) -> int:
    if isinstance(layer, _CONVS):
        _, h, w, _ = output.shape  # kh * kw * cin * cout multiply-adds per position, any kernel layout
        return 2 * h * w * math.prod(layer.kernel.shape)
    if isinstance(layer, keras.layers.Dense):
        return 2 * math.prod(output.shape[:-1]) * layer.kernel.shape[0] * layer.kernel.shape[1]
    if isinstance(layer, SCFTAttention):
        c, logits = output[0], output[1]
        b, n, m = logits.shape
        return 2 * 2 * b * n * m * c.shape[-1]  # q k^T and alpha v (projections are Dense)
    return 0


def forward_flops(model: keras.Model, inputs) -> int:
    """FLOPs of one forward pass of ``model`` on concrete ``inputs`` (numpy, batch 1 advised).

    Every convolution, Dense and SCFTAttention call is recorded with its real output shape while
    the model runs eagerly once; elementwise work (norms, activations) is not counted.
    """
    counted = []
    patched = []
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, (*_CONVS, keras.layers.Dense, SCFTAttention)):
            original = layer.call

            def recording(*args, _layer=layer, _call=original, **kwargs):
                out = _call(*args, **kwargs)
                counted.append(_layer_flops(_layer, args, out))
                return out

            layer.call = recording
            patched.append((layer, original))
    try:
        model(inputs)
    finally:
        for layer, original in patched:
            layer.call = original
    return int(sum(counted))


def train_step_flops(model, size: int) -> dict[str, int]:
    """Analytic FLOPs of one ColorizerModel training step, per image at ``size`` px.

    G: forward + backward (backward = 2x forward). D: forward on real and fake plus their
    backward for D's update (2 x 3 passes), and one forward plus an input-gradient backward
    for G's adversarial term (2 passes; the input gradient costs ~1 forward). VGG: forward on
    output and target, input-gradient backward through the output's branch (3 passes; the
    steps run the target's pass outside differentiation so that no backward runs over it).
    """
    s = np.zeros((1, size, size, 1), "float32")
    r = np.zeros((1, size, size, 3), "float32")
    g = forward_flops(model.generator, {"sketch": s, "reference": r})
    d = forward_flops(model.discriminator, {"image": r, "sketch": s})
    vgg = forward_flops(model.perceptual, r) if model.needs_perceptual() else 0
    parts = {
        "generator": 3 * g,
        "discriminator": 8 * d if model.loss_weights["adversarial"] else 0,
        "perceptual": 3 * vgg,
    }
    parts["total"] = sum(parts.values())
    parts["generator_forward"] = g
    return parts
