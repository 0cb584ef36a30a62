"""SCFT: spatially corresponding feature transfer (the paper's Section 3.2)."""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_scft.layers.initializers import HostGlorotUniform


@keras.saving.register_keras_serializable(package="keras_scft")
class SCFTAttention(keras.layers.Layer):
    """Attention from sketch features (queries) to reference features (keys, values).

    With V_s, V_r [B, h, w, d] flattened to [B, N, d] (N = h * w, row-major):
    ``logits = (V_s W_q)(V_r W_k)^T / sqrt(d)``, ``alpha = softmax(logits)`` over the
    reference positions, ``c = V_s + alpha (V_r W_v)``. Works for any grid size.

    Call: ``layer([v_s, v_r])`` returns ``(c, logits)``: c [B, h, w, d] and logits
    float [B, N, N] (the scaled scores the triplet loss needs). With
    ``return_attention=True`` also returns alpha [B, N, N] (rows sum to 1).

    Args:
        stop_gradient_attention: compute alpha from ``stop_gradient(logits)`` (SGA, Li et al.
            ECCV 2022): the attention map gets no gradient from the image losses; W_q and W_k
            then learn from the triplet loss only.
        temperature: ``alpha = softmax(logits / temperature)``, > 0 (1: the paper). Above 1
            each sketch cell mixes more reference cells (smoother, more of the reference's
            overall palette); the returned logits do not change. Read at trace time: set it
            before a model's first call (``SCFTGenerator.attention_temperature`` does that).
    """

    def __init__(self, stop_gradient_attention: bool = False, temperature: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.stop_gradient_attention = bool(stop_gradient_attention)
        self.temperature = check_temperature(temperature)

    def build(self, input_shape):
        dim = input_shape[0][-1]
        if dim is None or input_shape[1][-1] != dim:
            raise ValueError(f"SCFTAttention needs equal, known channel counts, got {input_shape}")
        self.dim = int(dim)
        self.query = keras.layers.Dense(self.dim, use_bias=False, kernel_initializer=HostGlorotUniform(), name="query")
        self.key = keras.layers.Dense(self.dim, use_bias=False, kernel_initializer=HostGlorotUniform(), name="key")
        self.value = keras.layers.Dense(self.dim, use_bias=False, kernel_initializer=HostGlorotUniform(), name="value")
        for layer in (self.query, self.key, self.value):
            layer.build((None, None, self.dim))

    def call(self, inputs, return_attention: bool = False):
        v_s, v_r = inputs
        shape = ops.shape(v_s)
        b, h, w = shape[0], shape[1], shape[2]
        flat_s = ops.reshape(v_s, (b, -1, self.dim))
        flat_r = ops.reshape(ops.cast(v_r, v_s.dtype), (b, -1, self.dim))
        q, k, v = self.query(flat_s), self.key(flat_r), self.value(flat_r)
        logits = ops.matmul(q, ops.transpose(k, (0, 2, 1))) / ops.cast(math.sqrt(self.dim), q.dtype)
        scores = ops.stop_gradient(logits) if self.stop_gradient_attention else logits
        scores = ops.cast(scores, "float32")
        alpha = ops.softmax(scores if self.temperature == 1.0 else scores / self.temperature, axis=-1)
        transferred = ops.matmul(ops.cast(alpha, v.dtype), v)
        c = ops.reshape(flat_s + transferred, (b, h, w, self.dim))
        if return_attention:
            return c, logits, alpha
        return c, logits

    def compute_output_shape(self, input_shape):
        b, h, w, d = input_shape[0]
        n = None if h is None or w is None else h * w
        m = None if input_shape[1][1] is None or input_shape[1][2] is None else input_shape[1][1] * input_shape[1][2]
        return (b, h, w, d), (b, n, m)

    def get_config(self):
        config = super().get_config()
        config["stop_gradient_attention"] = self.stop_gradient_attention
        config["temperature"] = self.temperature
        return config


def check_temperature(value) -> float:
    """``value`` as a float, or ValueError naming it unless it is finite and > 0."""
    try:
        temperature = float(value)
    except (TypeError, ValueError):
        temperature = math.nan
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"attention temperature must be a finite number > 0, got {value!r}")
    return temperature
