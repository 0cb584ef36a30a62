import keras
import numpy as np
import pytest

from keras_scft.layers.padded_conv import ChannelPaddedConv2D
from tests.helpers import run_layer_test

pytestmark = pytest.mark.multi_backend


@pytest.mark.parametrize("channels_in,filters,strides", [(1, 16, 1), (3, 3, 1), (3, 5, 2), (8, 8, 1)])
def test_equals_conv2d_with_the_same_weights(channels_in, filters, strides):
    """Zero channels added inside the op change nothing: same outputs as Conv2D, same
    variable shapes (checkpoints interchange)."""
    x = np.random.default_rng(0).normal(size=(2, 9, 10, channels_in)).astype("float32")
    ours = ChannelPaddedConv2D(filters, 3, strides=strides, padding="same", bias_initializer="random_normal")
    out = keras.ops.convert_to_numpy(ours(x))
    plain = keras.layers.Conv2D(filters, 3, strides=strides, padding="same")
    plain.build(x.shape)
    assert [w.shape for w in plain.weights] == [w.shape for w in ours.weights]
    plain.set_weights(ours.get_weights())
    assert out.shape[-1] == filters
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(plain(x)), atol=1e-5)


def test_serializes(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    out = run_layer_test(lambda: ChannelPaddedConv2D(3, 3, padding="same", channel_multiple=4), x, tmp_path)
    assert out.shape == (2, 8, 8, 3)


def test_rejects_bad_multiple():
    with pytest.raises(ValueError, match="channel_multiple must be >= 1"):
        ChannelPaddedConv2D(3, 3, channel_multiple=0)
