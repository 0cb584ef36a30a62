import keras
import numpy as np
import pytest

from keras_scft.layers.filter_major_conv import FilterMajorConv2D
from tests.helpers import run_layer_test, vjp

pytestmark = pytest.mark.multi_backend


def _pair(x, seed=0, **kwargs):
    """A built FilterMajorConv2D and a keras Conv2D holding the same weights (kernel transposed)."""
    ours = FilterMajorConv2D(5, 3, bias_initializer="random_normal", **kwargs)
    ours.build(x.shape)
    plain = keras.layers.Conv2D(5, 3, **kwargs)
    plain.build(x.shape)
    rng = np.random.default_rng(seed)
    ohwi = rng.normal(size=(5, 3, 3, x.shape[-1])).astype("float32")
    ours.kernel.assign(ohwi)
    plain.kernel.assign(ohwi.transpose(1, 2, 3, 0))
    if ours.use_bias:
        plain.bias.assign(ours.bias)
    return ours, plain


@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_equals_conv2d_with_the_same_weights(strides, padding, use_bias):
    x = np.random.default_rng(1).normal(size=(2, 7, 6, 4)).astype("float32")
    ours, plain = _pair(x, strides=strides, padding=padding, use_bias=use_bias)
    assert tuple(ours.kernel.shape) == (5, 3, 3, 4) and len(ours.weights) == len(plain.weights)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(plain(x)),
                               atol=1e-5)


def test_gradients_equal_conv2d_ones():
    """Input gradient equal, kernel gradient Conv2D's transposed to [F, kh, kw, C]."""
    x = np.random.default_rng(2).normal(size=(2, 6, 5, 3)).astype("float32")
    ours, plain = _pair(x, strides=2, padding="same")
    cotangent = np.random.default_rng(3).normal(size=(2, 3, 3, 5)).astype("float32")
    ohwi = keras.ops.convert_to_numpy(ours.kernel)

    def forward(layer):
        return lambda inputs, kernel: layer.stateless_call([kernel, layer.bias.value], [], inputs)[0]

    dx, dkernel = vjp(forward(ours), [x, ohwi], cotangent)
    plain_dx, plain_dkernel = vjp(forward(plain), [x, ohwi.transpose(1, 2, 3, 0)], cotangent)
    np.testing.assert_allclose(dx, plain_dx, atol=1e-4)
    np.testing.assert_allclose(dkernel, plain_dkernel.transpose(3, 0, 1, 2), atol=1e-4)


def test_initial_kernel_has_conv2d_distribution():
    """glorot_uniform limit from the HWIO fans: sqrt(6 / (9 * (64 + 32)))."""
    layer = FilterMajorConv2D(32, 3)
    layer.build((1, 8, 8, 64))
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    limit = np.sqrt(6 / (9 * (64 + 32)))
    assert kernel.shape == (32, 3, 3, 64)
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit


def test_loads_either_kernel_layout_and_rejects_others():
    x = np.zeros((1, 6, 6, 4), "float32")
    ours, plain = _pair(x, padding="same")
    ohwi = keras.ops.convert_to_numpy(ours.kernel)
    bias = keras.ops.convert_to_numpy(ours.bias)
    target, _ = _pair(x, seed=9, padding="same")

    target.load_own_variables({"0": ohwi.transpose(1, 2, 3, 0), "1": bias})  # a Conv2D's file
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(target.kernel), ohwi)
    target.kernel.assign(np.zeros_like(ohwi))
    target.load_own_variables({"0": ohwi, "1": bias})  # its own file
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(target.kernel), ohwi)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(target.bias), bias)

    with pytest.raises(ValueError, match=r"stored kernel has shape \(3, 3, 5, 4\); expected \(5, 3, 3, 4\)"):
        target.load_own_variables({"0": np.zeros((3, 3, 5, 4), "float32"), "1": bias})


def test_serializes(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype("float32")
    out = run_layer_test(lambda: FilterMajorConv2D(4, 3, strides=2, padding="same"), x, tmp_path, atol=1e-5)
    assert out.shape == (2, 3, 3, 4)


def test_mixed_bfloat16_keeps_a_float32_variable():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layer = FilterMajorConv2D(4, 3, padding="same")
        out = layer(np.ones((1, 4, 4, 2), "float32"))
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert layer.kernel.dtype == "float32" and tuple(layer.kernel.shape) == (4, 3, 3, 2)


@pytest.mark.parametrize("kwargs", [{"groups": 2}, {"lora_rank": 2}])
def test_rejects_what_it_does_not_support(kwargs):
    with pytest.raises(ValueError, match="FilterMajorConv2D 'fm'.* not supported"):
        FilterMajorConv2D(4, 3, name="fm", **kwargs)
