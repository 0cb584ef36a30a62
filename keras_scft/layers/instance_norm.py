"""Instance normalization whose statistics take one read of the maps."""

from __future__ import annotations

import keras
from keras import ops


def one_pass_moments(x, axes=(1, 2)):
    """Mean and variance of ``x`` over ``axes`` (kept as size-1 axes), in float32.

    Both statistics are sums over the same read of ``x`` (XLA computes them in one kernel,
    where ``keras.ops.moments``, mean then mean of squared deviations, reads the maps twice):
    the shifted-data form var = E[d^2] - E[d]^2 with d = x - k, where k is the first element
    of each reduced slice (a sample of the slice, so |mean - k| is of the order of the spread).
    Without the shift, E[x^2] - E[x]^2 loses float32 epsilon x mean^2 / variance of the
    variance to cancellation, which is large on nearly constant maps (white paper): in the tiny
    test model's step it made the TF and JAX gradients differ by ~1% (tests/test_model.py),
    against 0.02% now. The variance is clipped at 0 against rounding.
    """
    x = ops.cast(x, "float32")
    first = tuple(slice(0, 1) if axis in axes else slice(None) for axis in range(len(x.shape)))
    shift = ops.stop_gradient(x[first])
    d = x - shift
    mean_d = ops.mean(d, axis=axes, keepdims=True)
    mean_square = ops.mean(ops.square(d), axis=axes, keepdims=True)
    return shift + mean_d, ops.maximum(mean_square - ops.square(mean_d), 0.0)


@keras.saving.register_keras_serializable(package="keras_scft")
class InstanceNormalization(keras.layers.Layer):
    """Per image and channel: (x - mean) / sqrt(var + epsilon) * gamma + beta, statistics over
    the spatial axes of NHWC maps.

    The function of ``keras.layers.GroupNormalization(groups=-1)`` with the same variables
    (``gamma`` ones, ``beta`` zeros, shape [C], float32, in that order), statistics and
    arithmetic in float32, the result in the compute dtype. The variance comes from one pass
    (:func:`one_pass_moments`): on the GPU a quarter of the memory traffic of each normalized
    map less (H200, generator inference at batch 64: 6,447 -> 6,702 img/s, docs/benchmarks.md;
    measured before the shift, which keeps the single read).

    Input [B, H, W, C] -> output [B, H, W, C].
    """

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.autocast = False  # gamma and beta stay float32, as in GroupNormalization
        self.supports_masking = True

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{type(self).__name__} {self.name!r} needs a known channel count; got "
                             f"input shape {tuple(input_shape)}")
        self.gamma = self.add_weight(shape=(channels,), name="gamma", initializer="ones", autocast=False)
        self.beta = self.add_weight(shape=(channels,), name="beta", initializer="zeros", autocast=False)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        mean, variance = one_pass_moments(x, axes=tuple(range(1, len(inputs.shape) - 1)))
        scale = ops.rsqrt(variance + self.epsilon) * ops.cast(self.gamma, "float32")
        shift = ops.cast(self.beta, "float32") - mean * scale
        return ops.cast(x * scale + shift, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
