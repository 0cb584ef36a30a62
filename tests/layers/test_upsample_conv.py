import keras
import numpy as np
import pytest

from keras_scft.layers.upsample_conv import UpsampleConcatConv2D, upsample_concat_conv
from tests.helpers import assert_same_gradients, run_layer_test

pytestmark = pytest.mark.multi_backend


def _plain(x, skip, kernel):
    """What it replaces: nearest 2x upsampling, concatenation, a 3x3 'same' convolution."""
    up = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
    return keras.ops.conv(keras.ops.concatenate([up, skip], axis=-1), kernel, padding="same")


def _case(shape, skip_channels=4, filters=8, seed=0):
    rng = np.random.default_rng(seed)
    b, h, w, c = shape
    return (rng.normal(size=shape).astype("float32"),
            rng.normal(size=(b, 2 * h, 2 * w, skip_channels)).astype("float32"),
            rng.normal(size=(3, 3, c + skip_channels, filters)).astype("float32"))


@pytest.mark.parametrize("skip_blocks", [False, True])
@pytest.mark.parametrize("shape", [(2, 5, 7, 6), (1, 1, 3, 2), (1, 4, 1, 3)])
def test_equals_upsample_concat_conv(shape, skip_blocks):
    """Same outputs as the layers it replaces; odd sizes and 1-pixel maps included (the
    sub-pixel kernels must handle every border), the skip conv plain or on space-to-depth blocks."""
    x, skip, kernel = _case(shape)
    ours = keras.ops.convert_to_numpy(upsample_concat_conv(x, skip, kernel, skip_blocks=skip_blocks))
    assert ours.shape == (shape[0], 2 * shape[1], 2 * shape[2], 8)
    np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(_plain(x, skip, kernel)), atol=5e-5)


@pytest.mark.parametrize("skip_blocks", [False, True])
def test_gradients_equal_plain_layout(skip_blocks):
    """Kernel, x and skip gradients (through the summed sub-pixel taps) are the plain ones."""
    args = _case((2, 4, 3, 3), skip_channels=2, filters=5, seed=1)
    assert_same_gradients(lambda *a: upsample_concat_conv(*a, skip_blocks=skip_blocks), _plain, args)


@pytest.mark.parametrize("use_bias", [True, False])
def test_layer_matches_conv2d_with_its_weights(use_bias, tmp_path):
    """The layer's kernel/bias are Conv2D's (same shapes, x's channels first) and it
    serializes (config round trip, .keras save/load, mixed precision)."""
    x, skip, _ = _case((2, 3, 4, 6))
    out = run_layer_test(lambda: UpsampleConcatConv2D(8, use_bias=use_bias, bias_initializer="random_normal",
                                                      name="up"), [x, skip], tmp_path, atol=1e-5)
    layer = UpsampleConcatConv2D(8, use_bias=use_bias, bias_initializer="random_normal")
    ours = keras.ops.convert_to_numpy(layer([x, skip]))
    conv = keras.layers.Conv2D(8, 3, padding="same", use_bias=use_bias)
    conv.build((None, None, None, 10))
    conv.set_weights(layer.get_weights())
    up = keras.layers.UpSampling2D(2)(x)
    np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(conv(keras.ops.concatenate([up, skip], -1))),
                               atol=5e-5)
    assert out.shape == (2, 6, 8, 8)
