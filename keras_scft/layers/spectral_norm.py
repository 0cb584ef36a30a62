"""Spectrally normalized 2-D convolution (Miyato et al. 2018), functional in the weights.

``keras.layers.SpectralNormalization`` assigns W / sigma back into the trainable kernel on
every training call. Under TensorFlow that rescales the stored kernel in place; under a
stateless JAX step the assignment to a trainable variable is dropped. The two backends
would then train different dynamics. This layer keeps W as trained and uses W / sigma(W)
in the forward pass (gradient through sigma, as in PyTorch's ``spectral_norm``); only the
power-iteration vector u is state, updated in training calls.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_scft.layers.initializers import HostRandomNormal
from keras_scft.layers.space_to_depth_conv import MAX_CHANNELS, strided_conv_on_blocks
from keras_scft.layers.tap_sum_conv import tap_sum_conv

# Power-iteration steps at build, to converge u on the initial kernel.
BUILD_ITERATIONS = 15
# Most filters for which a stride-1 convolution runs as tap_sum_conv (measured at 1: D's logits).
TAP_SUM_MAX_FILTERS = 4


def _l2_normalize(x, eps=1e-12, xp=ops):
    return x / xp.maximum(xp.sqrt(xp.sum(xp.square(x))), eps)


def _power_iterate(w, u, steps: int, xp=ops):
    """``steps`` power iterations for the top singular vectors of ``w`` [n, filters] from ``u``
    [1, filters] -> the new u; ``xp`` is ``keras.ops`` or ``numpy``, which share these names."""
    for _ in range(steps):
        v = _l2_normalize(xp.matmul(u, xp.transpose(w)), xp=xp)
        u = _l2_normalize(xp.matmul(v, w), xp=xp)
    return u


def _host_value(variable):
    """The variable's value as a numpy array, or None where this process cannot read all of it
    (a JAX array laid out over other processes' devices)."""
    value = variable.value
    if not getattr(value, "is_fully_addressable", True):
        return None
    return ops.convert_to_numpy(value)


@keras.saving.register_keras_serializable(package="keras_scft")
class SpectralNormConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` whose kernel is divided by its largest singular value.

    Args:
        power_iterations: power-iteration steps per training call (1 is standard).
        All other arguments are those of ``keras.layers.Conv2D``.
    """

    def __init__(self, *args, power_iterations: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.power_iterations = int(power_iterations)

    def build(self, input_shape):
        super().build(input_shape)
        self.vector_u = self.add_weight(
            shape=(1, self.filters), initializer=HostRandomNormal(),
            trainable=False, name="vector_u", dtype=self.variable_dtype,
        )
        # As torch's spectral_norm: converge u on the initial kernel, so that the first
        # training steps already divide by the true largest singular value. In numpy where the
        # values are at hand: in keras.ops they are 60 small eager device ops per layer, each a
        # dispatch (and, without a compilation cache, a compilation).
        kernel, u = _host_value(self.kernel), _host_value(self.vector_u)
        if kernel is None or u is None:
            u = _power_iterate(ops.reshape(self.kernel, (-1, self.filters)), self.vector_u, BUILD_ITERATIONS)
        else:
            w = kernel.reshape(-1, self.filters).astype(np.float32)
            u = _power_iterate(w, u.astype(np.float32), BUILD_ITERATIONS, xp=np)
        self.vector_u.assign(u)

    def sigma(self, training: bool = False):
        """sigma(W), the largest singular value estimate (gradient flows through W only), and
        the updated u (stop-gradient)."""
        w = ops.reshape(self.kernel, (-1, self.filters))
        u = self.vector_u
        if training:
            u = _power_iterate(w, u, self.power_iterations)
        u = ops.stop_gradient(u)
        v = ops.stop_gradient(_l2_normalize(ops.matmul(u, ops.transpose(w))))
        return ops.sum(ops.matmul(v, w) * u), u

    def normalized_kernel(self, training: bool = False):
        """W / sigma(W), and the updated u (stop-gradient)."""
        sigma, u = self.sigma(training)
        return self.kernel / sigma, u

    def call(self, inputs, training=False):
        sigma, u = self.sigma(training=bool(training))
        if training:
            self.vector_u.assign(u)
        # conv(x, W) / sigma, the same as conv(x, W / sigma): the convolution then takes the
        # kernel itself, and XLA on the GPU recognizes its gradient as cuDNN's strided
        # backward-data convolution (with W / sigma it ran a forward convolution over a
        # zero-dilated input: 4x the work at stride 2).
        outputs = self._convolve(inputs, ops.cast(self.kernel, self.compute_dtype))
        outputs = outputs * ops.cast(1.0 / sigma, self.compute_dtype)
        if self.use_bias:
            outputs = outputs + ops.cast(self.bias, self.compute_dtype)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def _convolve(self, inputs, kernel):
        """conv(inputs, kernel) with this layer's settings, in the fastest of equal forms on the
        GPU (H200, 2026-11-28, docs/benchmarks.md: the batch-32 step 33.6 -> 32.7 ms): few
        filters at stride 1 as :func:`tap_sum_conv`, stride 2 with an even kernel and at most
        ``MAX_CHANNELS`` input channels on space-to-depth blocks (:func:`strided_conv_on_blocks`;
        at 64 and 128 channels that form was slower). Other settings, and inputs of odd or
        unknown height or width, take ``keras.ops.conv``."""
        height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        same = (self.padding == "same" and self.data_format == "channels_last"
                and self.dilation_rate == (1, 1) and self.groups == 1)
        if same and self.strides == (1, 1) and self.filters <= TAP_SUM_MAX_FILTERS:
            return tap_sum_conv(inputs, kernel)
        even = height is not None and width is not None and height % 2 == 0 and width % 2 == 0
        square_even_kernel = self.kernel_size[0] == self.kernel_size[1] and self.kernel_size[0] % 2 == 0
        few_channels = channels is not None and channels <= MAX_CHANNELS
        if same and self.strides == (2, 2) and square_even_kernel and even and few_channels:
            return strided_conv_on_blocks(inputs, kernel)
        return ops.conv(inputs, kernel, strides=self.strides, padding=self.padding, data_format=self.data_format,
                        dilation_rate=self.dilation_rate)

    def save_own_variables(self, store):
        # Conv2D saves only kernel and bias; u is state too (checkpoints resume exactly).
        for i, variable in enumerate(self.variables):
            store[str(i)] = variable

    def load_own_variables(self, store):
        self._check_load_own_variables(store)
        for i, variable in enumerate(self.variables):
            variable.assign(store[str(i)])

    def get_config(self):
        config = super().get_config()
        config["power_iterations"] = self.power_iterations
        return config
