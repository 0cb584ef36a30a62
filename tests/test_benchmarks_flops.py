"""benchmarks/flops.py (analytic FLOPs, which the GPU benchmarks report) against XLA's own
count of the compiled computation on CPU (where XLA counts convolutions)."""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.helpers import TINY_WIDTHS, requires_backend, tiny_colorizer
from tests.test_model import _examples

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

pytestmark = [pytest.mark.multi_backend, requires_backend("jax")]


def _xla_flops(fn, *args) -> float:
    import jax

    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    return float((cost[0] if isinstance(cost, list) else cost)["flops"])


def _forward_xla(model, inputs) -> float:
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    return _xla_flops(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0], tv, ntv, inputs)


def test_layer_counts_equal_xla_without_padding():
    """With "valid" padding every multiply-add is real, so the formulas must match XLA exactly
    (with "same" padding XLA skips the taps that fall on padding; the analytic count does not)."""
    from flops import forward_flops

    inputs = keras.Input((16, 20, 4))
    x = keras.layers.Conv2D(8, 3, padding="valid")(inputs)
    x = keras.layers.Conv2D(6, (1, 2), strides=2, padding="valid")(x)
    outputs = keras.layers.Dense(5)(x)
    model = keras.Model(inputs, outputs)
    data = np.zeros((1, 16, 20, 4), "float32")
    conv1, conv2, dense = 2 * 14 * 18 * 8 * 4 * 9, 2 * 7 * 9 * 6 * 8 * 2, 2 * 7 * 9 * 6 * 5
    assert forward_flops(model, data) == conv1 + conv2 + dense
    biases = 14 * 18 * 8 + 7 * 9 * 6 + 7 * 9 * 5  # XLA counts the bias additions too
    assert _forward_xla(model, data) == conv1 + conv2 + dense + biases


def test_train_step_does_the_passes_the_analytic_count_assumes():
    """XLA's count of the whole compiled train step equals 3 generator + 8 discriminator + 3
    VGG forward passes (each counted by XLA too), plus elementwise work (norms, activations,
    losses, Adam: < 20%). Running the VGG on [output; target] inside the differentiated loss
    (one more backward pass) measured 1.41x here."""
    from flops import train_step_flops

    model = tiny_colorizer(perceptual={"arch": "vgg16", "weights": None, "layers": ["relu1_2", "relu2_2", "relu3_3"]})
    model.compile()
    x, y = _examples(n=4, size=32)
    one = {k: v[:1] for k, v in x.items()}
    g = _forward_xla(model.generator, one)
    d = _forward_xla(model.discriminator, {"image": y["target"][:1], "sketch": x["sketch"][:1]})
    vgg = _forward_xla(model.perceptual, y["target"][:1])
    state = tuple([v.value for v in variables] for variables in (
        model.trainable_variables, model.non_trainable_variables, model.optimizer.variables, model.metrics_variables))
    step = _xla_flops(model.train_step, state, (x, y)) / 4
    assert 1.0 <= step / (3 * g + 8 * d + 3 * vgg) < 1.2
    parts = train_step_flops(model, 32)
    assert parts["total"] == parts["generator"] + parts["discriminator"] + parts["perceptual"]
    assert parts["generator"] == 3 * parts["generator_forward"]
