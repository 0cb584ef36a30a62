import keras
import numpy as np
import pytest

from keras_scft.layers.padded_conv import ChannelPaddedConv2D, SpaceToDepthConv2D
from keras_scft.layers.space_to_depth_conv import (depth_to_space, space_to_depth, space_to_depth_conv,
                                                   strided_conv_on_blocks, use_space_to_depth)
from tests.helpers import assert_same_gradients, conv_case, run_layer_test

pytestmark = pytest.mark.multi_backend


def _plain(x, kernel):
    return keras.ops.conv(x, kernel, padding="same")


def test_space_to_depth_orders_channels_by_phase_and_inverts():
    x = np.arange(2 * 4 * 6 * 3, dtype="float32").reshape(2, 4, 6, 3)
    blocks = keras.ops.convert_to_numpy(space_to_depth(x))
    assert blocks.shape == (2, 2, 3, 12)
    # block (i, j), channel (row phase a, col phase b, c) = x[2i + a, 2j + b, c]
    np.testing.assert_array_equal(blocks[1, 1, 0, 6 * 1 + 3 * 1 + 2], x[1, 3, 1, 2])
    np.testing.assert_array_equal(blocks[0, 0, 2, 6 * 0 + 3 * 1 + 0], x[0, 0, 5, 0])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(depth_to_space(blocks)), x)


@pytest.mark.parametrize("shape,filters", [((2, 8, 6, 1), 16), ((1, 4, 10, 16), 16), ((2, 6, 4, 3), 5),
                                           ((1, 2, 2, 2), 3)])
def test_equals_the_plain_convolution(shape, filters):
    """Every border and phase: a tap that falls off the image must meet the zero padding."""
    x, kernel = conv_case(shape, filters)
    ours = keras.ops.convert_to_numpy(space_to_depth_conv(x, kernel))
    np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(_plain(x, kernel)), atol=5e-5)


def test_gradients_equal_the_plain_ones():
    assert_same_gradients(space_to_depth_conv, _plain, conv_case((2, 6, 4, 3), 5, seed=1))


def _strided(x, kernel):
    return keras.ops.conv(x, kernel, strides=2, padding="same")


@pytest.mark.parametrize("kernel_size,shape,filters", [(4, (2, 8, 6, 4), 8), (4, (1, 4, 10, 1), 3), (2, (1, 6, 4, 3), 5),
                                                       (6, (2, 8, 8, 2), 4), (4, (1, 2, 2, 3), 2)])
def test_strided_conv_on_blocks_equals_the_strided_convolution(kernel_size, shape, filters):
    """Stride 2, "same": Keras pads (k - 2) / 2 on each side of an even input; every border."""
    x, kernel = conv_case(shape, filters, kernel_size, seed=3)
    ours = keras.ops.convert_to_numpy(strided_conv_on_blocks(x, kernel))
    assert ours.shape == (shape[0], shape[1] // 2, shape[2] // 2, filters)
    np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(_strided(x, kernel)), atol=5e-5)


def test_strided_conv_on_blocks_gradients_equal_the_plain_ones():
    assert_same_gradients(strided_conv_on_blocks, _strided, conv_case((2, 8, 6, 4), 5, kernel_size=4, seed=4))


@pytest.mark.parametrize("layer,kwargs", [(SpaceToDepthConv2D, {}),
                                          (ChannelPaddedConv2D, {"channel_multiple": 16, "space_to_depth": True})])
@pytest.mark.parametrize("height,width", [(8, 6), (7, 6), (6, 5)])
def test_layers_equal_conv2d_with_the_same_weights(layer, kwargs, height, width):
    """Even sizes run on blocks, odd ones (known when traced) take the plain path: same result."""
    x = np.random.default_rng(0).normal(size=(2, height, width, 3)).astype("float32")
    ours = layer(4, 3, padding="same", bias_initializer="random_normal", **kwargs)
    out = keras.ops.convert_to_numpy(ours(x))
    plain = keras.layers.Conv2D(4, 3, padding="same")
    plain.build(x.shape)
    assert [w.shape for w in plain.weights] == [w.shape for w in ours.weights]
    plain.set_weights(ours.get_weights())
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(plain(x)), atol=5e-5)


@pytest.mark.parametrize("layer,kwargs", [(SpaceToDepthConv2D, {}),
                                          (ChannelPaddedConv2D, {"channel_multiple": 16, "space_to_depth": True})])
def test_layers_serialize(layer, kwargs, tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    out = run_layer_test(lambda: layer(3, 3, padding="same", **kwargs), x, tmp_path, atol=1e-5)
    assert out.shape == (2, 8, 8, 3)


@pytest.mark.parametrize("kwargs", [{"strides": 2}, {"kernel_size": 5}, {"padding": "valid"},
                                    {"dilation_rate": 2}])
def test_rejects_convolutions_it_does_not_compute(kwargs):
    args = {"filters": 4, "kernel_size": 3, "padding": "same", **kwargs}
    with pytest.raises(ValueError, match="space_to_depth needs a 3x3 kernel, stride 1"):
        SpaceToDepthConv2D(**args)
    with pytest.raises(ValueError, match="always runs on space-to-depth blocks"):
        SpaceToDepthConv2D(4, 3, padding="same", space_to_depth=False)


def test_generator_uses_blocks_only_for_few_channels():
    assert use_space_to_depth(1, 16) and use_space_to_depth(16, 3)
    assert not use_space_to_depth(16, 32) and not use_space_to_depth(8, 8, strides=2)
    assert not use_space_to_depth(8, 8, kernel_size=1)
