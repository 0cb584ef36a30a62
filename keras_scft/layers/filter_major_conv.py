"""Conv2D whose kernel variable is stored output-channel-major, [filters, kh, kw, in_channels].

On the GPU, cuDNN's NHWC convolutions take the filter as OHWI and write the weight gradient as
OHWI. With Keras' HWIO kernel variable, XLA fuses the gradient's transpose into the optimizer
update and transposes the float32 weight and both Adam moments there and back (H100: 2.2 ms of a
38 ms training step for the 3x3x992x992 residual kernels). With the variable already OHWI those
transposes are layout no-ops; the one transpose left, OHWI -> HWIO in the forward pass, is what
cuDNN undoes.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

_TO_HWIO = (1, 2, 3, 0)  # [F, kh, kw, C] -> [kh, kw, C, F]
_TO_OHWI = (3, 0, 1, 2)  # [kh, kw, C, F] -> [F, kh, kw, C]


class _InHWIO:
    """Initializer, regularizer or constraint of an HWIO kernel applied to the OHWI variable:
    the same values, distribution (fans from the HWIO shape) and penalty as on Conv2D's kernel."""

    def __init__(self, fn):
        self.fn = fn

    def initializer(self, shape, dtype=None):
        """shape (F, kh, kw, C) -> the initial value [F, kh, kw, C], drawn as [kh, kw, C, F]."""
        hwio = tuple(shape[i] for i in _TO_HWIO)
        return ops.transpose(self.fn(hwio, dtype=dtype), _TO_OHWI)

    def regularizer(self, kernel):
        return self.fn(ops.transpose(kernel, _TO_HWIO))

    def constraint(self, kernel):
        return ops.transpose(self.fn(ops.transpose(kernel, _TO_HWIO)), _TO_OHWI)


@keras.saving.register_keras_serializable(package="keras_scft")
class FilterMajorConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (same arguments, config, result and initial distribution) whose
    ``kernel`` variable is [filters, kh, kw, in_channels] (OHWI) instead of [kh, kw, in_channels,
    filters] (HWIO); see the module docstring for why.

    inputs [B, H, W, C] -> [B, H', W', filters] (channels_last). ``load_own_variables`` reads
    either layout, so files saved while the layer was a plain ``Conv2D`` still load. Not
    supported: ``groups`` > 1 and LoRA.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.groups != 1:
            raise ValueError(f"{type(self).__name__} {self.name!r}: groups={self.groups} is not supported; "
                             "use keras.layers.Conv2D for grouped convolutions")
        if self.lora_rank:
            raise ValueError(f"{type(self).__name__} {self.name!r}: LoRA (lora_rank={self.lora_rank}) is not "
                             "supported; use keras.layers.Conv2D")

    def build(self, input_shape):
        channel_axis = -1 if self.data_format == "channels_last" else 1
        in_channels = input_shape[channel_axis]
        self.input_spec = keras.layers.InputSpec(min_ndim=self.rank + 2, axes={channel_axis: in_channels})
        self.compute_output_shape(input_shape)  # validates the input shape, as Conv2D does
        self._kernel = self.add_weight(
            name="kernel", shape=(self.filters, *self.kernel_size, in_channels),
            initializer=_InHWIO(self.kernel_initializer).initializer,
            regularizer=self.kernel_regularizer and _InHWIO(self.kernel_regularizer).regularizer,
            constraint=self.kernel_constraint and _InHWIO(self.kernel_constraint).constraint,
            trainable=True, dtype=self.dtype)
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint, trainable=True,
                dtype=self.dtype)
        else:
            self.bias = None
        self.built = True

    def enable_lora(self, *args, **kwargs):
        raise ValueError(f"{type(self).__name__} {self.name!r}: LoRA is not supported; use keras.layers.Conv2D")

    def convolution_op(self, inputs, kernel):
        """kernel [F, kh, kw, C] (the variable, autocast to the compute dtype) -> Conv2D's op."""
        return super().convolution_op(inputs, ops.transpose(kernel, _TO_HWIO))

    def load_own_variables(self, store):
        """Loads the kernel stored OHWI (this layer's files) or HWIO (a ``Conv2D``'s files)."""
        self._check_load_own_variables(store)
        if not self.built:
            return
        kernel = store["0"]
        own = tuple(self._kernel.shape)
        hwio = tuple(own[i] for i in _TO_HWIO)
        found = tuple(kernel.shape)
        if found == hwio and found != own:
            kernel = np.transpose(np.asarray(kernel), _TO_OHWI)
        elif found != own:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: stored kernel has shape {found}; expected {own} "
                f"(filters, kh, kw, in_channels) or Conv2D's {hwio} (kh, kw, in_channels, filters)")
        self._kernel.assign(kernel)
        if self.use_bias:
            self.bias.assign(store["1"])
