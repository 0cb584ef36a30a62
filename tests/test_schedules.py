"""keras_scft.schedules: the learning rate's constant part, its straight fall to 0, serialization."""

import keras
import numpy as np
import pytest

from keras_scft.schedules import LinearDecayTail

pytestmark = pytest.mark.multi_backend


def _rates(schedule, steps):
    return [float(keras.ops.convert_to_numpy(schedule(step))) for step in steps]


def test_constant_then_linear_to_zero():
    schedule = LinearDecayTail(1e-4, total_steps=10, decay_steps=4)
    rates = _rates(schedule, range(12))
    np.testing.assert_allclose(rates[:7], 1e-4, rtol=1e-6)  # up to step total - decay
    np.testing.assert_allclose(rates[6:11], [1e-4, 0.75e-4, 0.5e-4, 0.25e-4, 0.0], rtol=1e-5, atol=1e-12)
    assert rates[11] == 0.0  # past the end: no negative rate


def test_the_whole_run_decays_when_decay_steps_is_total_steps():
    np.testing.assert_allclose(_rates(LinearDecayTail(2.0, 4, 4), range(5)), [2.0, 1.5, 1.0, 0.5, 0.0])


def test_an_optimizer_with_it_serializes_and_steps_by_it():
    optimizer = keras.optimizers.Adam(LinearDecayTail(1e-3, 8, 2))
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    schedule = restored.get_config()["learning_rate"]
    assert schedule["class_name"] == "LinearDecayTail"
    assert schedule["config"] == {"learning_rate": 1e-3, "total_steps": 8, "decay_steps": 2}
    variable = keras.Variable(np.ones(3, "float32"))
    restored.build([variable])
    for _ in range(7):
        restored.apply([keras.ops.ones(3)], [variable])
    assert float(keras.ops.convert_to_numpy(restored.learning_rate)) == pytest.approx(0.5e-3)  # step 7 of 8


@pytest.mark.parametrize("kwargs, message", [
    ({"learning_rate": -1.0, "total_steps": 4, "decay_steps": 2}, "learning_rate must be >= 0"),
    ({"learning_rate": 1.0, "total_steps": 4, "decay_steps": 0}, r"decay_steps must lie in 1..total_steps \(4\)"),
    ({"learning_rate": 1.0, "total_steps": 4, "decay_steps": 5}, "got 5"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LinearDecayTail(**kwargs)
