import keras
import numpy as np
import pytest

from keras_scft.layers.pooling import BlockAveragePooling2D, BlockMaxPooling2D
from tests.helpers import run_layer_test, vjp

pytestmark = pytest.mark.multi_backend


@pytest.mark.parametrize("size,shape", [(4, (2, 16, 24, 3)), (4, (1, 18, 23, 2)), (1, (1, 5, 7, 2)), (2, (2, 9, 6, 4))])
@pytest.mark.parametrize("ours,keras_pool", [(BlockAveragePooling2D, keras.layers.AveragePooling2D),
                                             (BlockMaxPooling2D, keras.layers.MaxPooling2D)])
def test_block_pooling_equals_keras_pooling_values_and_gradient(ours, keras_pool, size, shape):
    """Same outputs as Keras' pooling (valid padding drops partial blocks) and same input
    gradient for a random cotangent (random inputs: no ties for the max)."""
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    ours, keras_pool = ours(size), keras_pool(size)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(keras_pool(x)),
                               atol=1e-6)
    cotangent = np.random.default_rng(1).normal(size=ours.compute_output_shape(shape)).astype("float32")
    np.testing.assert_allclose(_input_grad(ours, x, cotangent), _input_grad(keras_pool, x, cotangent), atol=1e-6)


def _input_grad(layer, x, cotangent):
    return vjp(layer, [x], cotangent)[0]


@pytest.mark.parametrize("layer", [BlockAveragePooling2D, BlockMaxPooling2D])
def test_block_pooling_serializes(layer, tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    out = run_layer_test(lambda: layer(4), x, tmp_path)
    assert out.shape == (2, 2, 2, 3)


def test_block_max_shares_the_gradient_of_tied_maxima():
    """A block of equal values passes its cotangent on in equal shares (sum preserved)."""
    x = np.ones((1, 2, 2, 1), "float32")
    grad = _input_grad(BlockMaxPooling2D(2), x, np.full((1, 1, 1, 1), 4.0, "float32"))
    np.testing.assert_allclose(grad, np.ones((1, 2, 2, 1)))


def test_block_pooling_rejects_bad_size():
    with pytest.raises(ValueError, match="BlockMaxPooling2D size must be >= 1"):
        BlockMaxPooling2D(0)
