import keras
import numpy as np
import pytest

from keras_scft.layers.patch_conv import PatchMatmulConv2D, patch_matmul_conv
from tests.helpers import run_layer_test, vjp

pytestmark = pytest.mark.multi_backend


def _case(shape, kernel_size, filters, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape).astype("float32"),
            rng.normal(size=(*kernel_size, shape[-1], filters)).astype("float32"))


@pytest.mark.parametrize("shape,kernel_size,filters,padding", [
    ((2, 7, 6, 3), (3, 3), 5, "same"), ((1, 5, 9, 1), (3, 3), 16, "same"), ((2, 6, 6, 3), (4, 2), 4, "same"),
    ((1, 6, 5, 8), (3, 3), 3, "same"), ((2, 7, 6, 3), (3, 3), 5, "valid"), ((1, 6, 6, 2), (2, 3), 4, "valid")])
def test_equals_the_plain_convolution(shape, kernel_size, filters, padding):
    """Odd and even kernels (TF's uneven "same" padding), depths that are and are not a
    multiple of 8, both paddings."""
    x, kernel = _case(shape, kernel_size, filters)
    ours = keras.ops.convert_to_numpy(patch_matmul_conv(x, kernel, padding=padding))
    plain = keras.ops.convert_to_numpy(keras.ops.conv(x, kernel, padding=padding))
    assert ours.shape == plain.shape
    np.testing.assert_allclose(ours, plain, atol=5e-5)


def test_gradients_equal_the_plain_ones():
    x, kernel = _case((2, 6, 5, 3), (3, 3), 4, seed=1)
    cotangent = np.random.default_rng(2).normal(size=(2, 6, 5, 4)).astype("float32")
    plain = vjp(lambda x, k: keras.ops.conv(x, k, padding="same"), [x, kernel], cotangent)
    for ours, expected in zip(vjp(patch_matmul_conv, [x, kernel], cotangent), plain):
        np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_layer_equals_conv2d_with_the_same_weights():
    x = np.random.default_rng(0).normal(size=(2, 9, 8, 3)).astype("float32")
    ours = PatchMatmulConv2D(6, 3, padding="same", activation="relu", bias_initializer="random_normal")
    out = keras.ops.convert_to_numpy(ours(x))
    plain = keras.layers.Conv2D(6, 3, padding="same", activation="relu")
    plain.build(x.shape)
    assert [(w.path.split("/")[-1], w.shape) for w in plain.weights] == [
        (w.path.split("/")[-1], w.shape) for w in ours.weights]
    plain.set_weights(ours.get_weights())
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(plain(x)), atol=5e-5)


def test_serializes(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    out = run_layer_test(lambda: PatchMatmulConv2D(4, 3, padding="same"), x, tmp_path, atol=1e-5)
    assert out.shape == (2, 8, 8, 4)


@pytest.mark.parametrize("kwargs", [{"strides": 2}, {"dilation_rate": 2}])
def test_rejects_convolutions_it_does_not_compute(kwargs):
    with pytest.raises(ValueError, match="computes stride-1 convolutions"):
        PatchMatmulConv2D(4, 3, padding="same", **kwargs)
    with pytest.raises(ValueError, match='padding must be "same" or "valid"'):
        patch_matmul_conv(np.zeros((1, 4, 4, 1), "float32"), np.zeros((3, 3, 1, 2), "float32"), padding="causal")
