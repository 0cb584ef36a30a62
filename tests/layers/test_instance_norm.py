import keras
import numpy as np
import pytest

from keras_scft.layers.instance_norm import InstanceNormalization, one_pass_moments
from tests.helpers import run_layer_test, vjp

pytestmark = pytest.mark.multi_backend


def _maps(shape=(2, 9, 12, 5), offset=3.0, seed=0):
    """Maps with a per-channel offset several standard deviations from 0 (the case where a
    one-pass variance loses the most to cancellation)."""
    rng = np.random.default_rng(seed)
    return (offset * rng.uniform(-1, 1, shape[-1]) + rng.normal(size=shape)).astype("float32")


def _pair(x, seed=1):
    """InstanceNormalization and GroupNormalization(groups=-1) with the same random gamma/beta."""
    ours, group = InstanceNormalization(), keras.layers.GroupNormalization(groups=-1, epsilon=1e-5)
    ours.build(x.shape)
    group.build(x.shape)
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(0.5, 1.5, x.shape[-1]).astype("float32"), rng.uniform(-1, 1, x.shape[-1]).astype("float32")]
    ours.set_weights(weights)
    group.set_weights(weights)
    return ours, group


@pytest.mark.parametrize("shape", [(2, 9, 12, 5), (1, 1, 3, 2), (3, 16, 16, 8)])
def test_equals_group_normalization_per_channel_values_and_gradients(shape):
    x = _maps(shape)
    ours, group = _pair(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(group(x)), atol=2e-5)
    cotangent = np.random.default_rng(2).normal(size=shape).astype("float32")
    np.testing.assert_allclose(vjp(ours, [x], cotangent)[0], vjp(group, [x], cotangent)[0], atol=2e-4)


def test_one_pass_moments_match_two_pass_and_stay_non_negative():
    x = _maps((2, 7, 5, 4), offset=10.0)
    mean, variance = one_pass_moments(x)
    assert tuple(mean.shape) == tuple(variance.shape) == (2, 1, 1, 4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mean), x.mean(axis=(1, 2), keepdims=True), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variance), x.var(axis=(1, 2), keepdims=True), rtol=1e-4)
    # a constant map: E[x^2] - E[x]^2 may round below 0; the clip keeps rsqrt(var + eps) finite
    constant = np.full((1, 4, 4, 3), 7.3, "float32")
    assert np.all(keras.ops.convert_to_numpy(one_pass_moments(constant)[1]) >= 0)
    layer, _ = _pair(constant)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(constant)),
                               np.broadcast_to(layer.get_weights()[1], constant.shape), atol=1e-2)


def test_one_pass_moments_of_a_nearly_constant_map():
    """White paper with faint texture (mean / std ~ 1e3): E[x^2] - E[x]^2 in float32 would be
    off by tens of percent here; the shifted sums stay within float32 rounding."""
    rng = np.random.default_rng(3)
    x = (1.0 + 1e-3 * rng.normal(size=(2, 16, 16, 3))).astype("float32")
    mean, variance = (keras.ops.convert_to_numpy(v) for v in one_pass_moments(x))
    exact = x.astype("float64")
    np.testing.assert_allclose(mean, exact.mean(axis=(1, 2), keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(variance, exact.var(axis=(1, 2), keepdims=True), rtol=1e-3)
    ours, group = _pair(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(group(x)), atol=2e-3)


def test_mixed_bfloat16_keeps_float32_variables_and_statistics():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        x = _maps()
        ours, group = _pair(x)
        out = ours(x)
        assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
        assert [v.dtype for v in ours.weights] == ["float32", "float32"]
        assert [v.path.split("/")[-1] for v in ours.weights] == ["gamma", "beta"]  # GroupNormalization's order
        # within a bfloat16 rounding (2**-8 relative) of GroupNormalization's
        expected = keras.ops.convert_to_numpy(keras.ops.cast(group(x), "float32"))
        got = keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))
        np.testing.assert_allclose(got, expected, rtol=2 ** -7, atol=2 ** -7)
    finally:
        keras.config.set_dtype_policy(previous)


def test_serializes(tmp_path):
    out = run_layer_test(lambda: InstanceNormalization(epsilon=1e-3), _maps(), tmp_path, atol=1e-6)
    assert out.shape == (2, 9, 12, 5)


def test_unknown_channels_are_refused():
    with pytest.raises(ValueError, match="known channel count"):
        InstanceNormalization(name="n").build((None, 8, 8, None))
