import keras
import numpy as np
import pytest

from keras_scft.layers.tap_sum_conv import tap_sum_conv
from tests.helpers import assert_same_gradients, conv_case

pytestmark = pytest.mark.multi_backend


def _plain(x, kernel):
    return keras.ops.conv(x, kernel, padding="same")


@pytest.mark.parametrize("kernel_size,shape,filters", [(4, (2, 7, 8, 16), 1), (3, (1, 6, 5, 8), 2), (4, (2, 9, 4, 5), 3),
                                                       (1, (1, 5, 6, 4), 2), (2, (1, 4, 3, 3), 1), (5, (1, 3, 3, 2), 1)])
def test_equals_the_same_convolution(kernel_size, shape, filters):
    """Even kernels pad one more row/column after than before ("same"); maps smaller than the kernel."""
    x, kernel = conv_case(shape, filters, kernel_size)
    ours = keras.ops.convert_to_numpy(tap_sum_conv(x, kernel))
    assert ours.shape == shape[:3] + (filters,)
    np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(_plain(x, kernel)), atol=5e-5)


def test_gradients_equal_the_plain_ones():
    assert_same_gradients(tap_sum_conv, _plain, conv_case((2, 6, 5, 8), 1, kernel_size=4, seed=1))


def test_keeps_the_input_dtype_and_sums_in_float32():
    """bfloat16 in, bfloat16 out, no worse than rounding the float32 result once."""
    x, kernel = conv_case((1, 8, 8, 64), 1, kernel_size=4, seed=2)
    x16, kernel16 = keras.ops.cast(x, "bfloat16"), keras.ops.cast(kernel, "bfloat16")
    ours = tap_sum_conv(x16, kernel16)
    assert keras.backend.standardize_dtype(ours.dtype) == "bfloat16"
    exact = keras.ops.convert_to_numpy(_plain(keras.ops.cast(x16, "float32"), keras.ops.cast(kernel16, "float32")))
    ours = keras.ops.convert_to_numpy(keras.ops.cast(ours, "float32"))
    np.testing.assert_allclose(ours, exact, rtol=2 ** -8, atol=1e-3)


def test_builds_in_a_model_of_unknown_height_and_width():
    inputs = keras.Input((None, None, 4))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: tap_sum_conv(t, np.ones((4, 4, 4, 1), "float32")))(inputs))
    x = np.random.default_rng(3).normal(size=(1, 5, 7, 4)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)),
                               keras.ops.convert_to_numpy(_plain(x, np.ones((4, 4, 4, 1), "float32"))), atol=1e-4)
