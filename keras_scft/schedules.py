"""Learning-rate schedules for runs of a fixed number of steps."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_scft")
class LinearDecayTail(keras.optimizers.schedules.LearningRateSchedule):
    """A constant learning rate, then a straight line down to 0 over the last ``decay_steps``
    of ``total_steps``: the schedule of pix2pix and CycleGAN (constant, then linear decay).

    ``lr(step) = learning_rate * clip((total_steps - step) / decay_steps, 0, 1)`` for the
    0-based step (the optimizer's ``iterations``): ``learning_rate`` up to step
    ``total_steps - decay_steps``, ``learning_rate / decay_steps`` at the last step, 0 after it.
    """

    def __init__(self, learning_rate: float, total_steps: int, decay_steps: int):
        if not learning_rate >= 0:
            raise ValueError(f"learning_rate must be >= 0, got {learning_rate}")
        if not 1 <= int(decay_steps) <= int(total_steps):
            raise ValueError(f"decay_steps must lie in 1..total_steps ({total_steps}), got {decay_steps}")
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.decay_steps = int(decay_steps)

    def __call__(self, step):
        remaining = (self.total_steps - ops.cast(step, "float32")) / self.decay_steps
        return self.learning_rate * ops.clip(remaining, 0.0, 1.0)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "total_steps": self.total_steps,
                "decay_steps": self.decay_steps}
