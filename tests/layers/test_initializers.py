import random
import threading

import keras
import numpy as np
import pytest

from keras_scft.layers import build_generator
from keras_scft.layers.initializers import HostGlorotUniform, HostRandomNormal, thread_private_draws
from tests.helpers import TINY_WIDTHS

pytestmark = pytest.mark.multi_backend


@pytest.mark.parametrize("shape, fans", [((3, 3, 16, 32), (144, 288)), ((64, 48), (64, 48))])
def test_glorot_uniform_bounds_and_spread(shape, fans):
    values = keras.ops.convert_to_numpy(HostGlorotUniform(seed=0)(shape, dtype="float32"))
    limit = np.sqrt(6.0 / sum(fans))
    assert values.shape == shape and values.dtype == np.float32
    assert np.abs(values).max() <= limit * (1 + 1e-6) and np.abs(values).max() > 0.95 * limit  # float32 draws
    np.testing.assert_allclose(values.std(), limit / np.sqrt(3.0), rtol=0.05)  # uniform(-l, l)


def test_int_seed_repeats_and_the_global_seed_reproduces_a_network():
    first = keras.ops.convert_to_numpy(HostGlorotUniform(seed=3)((4, 5)))
    np.testing.assert_array_equal(first, keras.ops.convert_to_numpy(HostGlorotUniform(seed=3)((4, 5))))

    def weights(seed):
        keras.utils.set_random_seed(seed)
        return build_generator(TINY_WIDTHS, residual_blocks=1, image_size=(32, 32)).get_weights()

    same, again, other = weights(1), weights(1), weights(2)
    assert all(np.array_equal(a, b) for a, b in zip(same, again))
    assert any(not np.array_equal(a, b) for a, b in zip(same, other))


def test_random_normal_moments():
    values = keras.ops.convert_to_numpy(HostRandomNormal(mean=1.0, stddev=0.5, seed=0)((200, 100)))
    assert values.dtype == np.float32
    np.testing.assert_allclose([values.mean(), values.std()], [1.0, 0.5], atol=0.01)


@pytest.mark.parametrize("initializer", [HostGlorotUniform(seed=7), HostRandomNormal(0.5, 2.0, seed=7)])
def test_config_round_trip(initializer):
    restored = keras.initializers.deserialize(keras.initializers.serialize(initializer))
    assert type(restored) is type(initializer) and restored.get_config() == initializer.get_config()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored((3, 4))),
                                  keras.ops.convert_to_numpy(initializer((3, 4))))


@pytest.mark.parametrize("make", [HostGlorotUniform, HostRandomNormal])
def test_bad_seed(make):
    with pytest.raises(ValueError, match="int seed or None"):
        make(seed=keras.random.SeedGenerator(1))


def test_generator_kernels_are_drawn_on_the_host():
    generator = build_generator(TINY_WIDTHS, residual_blocks=1, image_size=(32, 32))
    kinds = {type(layer.kernel_initializer).__name__ for layer in generator._flatten_layers()
             if getattr(layer, "kernel_initializer", None) is not None}
    assert kinds == {"HostGlorotUniform"}


def test_a_thread_building_with_private_draws_leaves_the_global_generators_alone():
    def build():
        with thread_private_draws():
            built.append(build_generator(TINY_WIDTHS, residual_blocks=1, image_size=(32, 32)).get_weights())

    keras.utils.set_random_seed(4)
    numpy_state, python_state, built = np.random.get_state(), random.getstate(), []
    for _ in range(2):
        thread = threading.Thread(target=build)
        thread.start()
        thread.join()
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]
    assert random.getstate() == python_state
    assert all(np.array_equal(a, b) for a, b in zip(*built))  # drawn from the private generator, seeded 0
    HostGlorotUniform()((2, 2))  # outside the scope: numpy's global generator again
    assert not np.array_equal(np.random.get_state()[1], numpy_state[1])
