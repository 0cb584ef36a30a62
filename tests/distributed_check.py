"""Run one training step on 2 devices and on 1 device with the same global batch and compare.

Run as ``python -m tests.distributed_check tensorflow|jax`` in a fresh process (the devices
must be configured before the framework starts): TensorFlow gets two logical CPU devices
and MirroredStrategy, JAX gets ``--xla_force_host_platform_device_count=2`` and
``keras.distribution.DataParallel``. Prints one JSON line: the largest absolute and relative
weight differences after the step, how many weights differ by more than 1e-5, and the losses
of both runs.
"""

import json
import os
import sys


def _examples():
    import numpy as np

    from keras_scft.augment.example import SelfAugment

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    example = SelfAugment(feature_stride=16).example_from_numpy(images, rng)
    return ({k: example[k] for k in ("sketch", "reference")},
            {k: example[k] for k in ("target", "correspondence", "valid", "negative")})


def _model():
    from tests.helpers import tiny_colorizer

    model = tiny_colorizer(perceptual=None)
    model.compile(loss_weights={"perceptual": 0, "style": 0})
    return model


def _diff(a, b, off: float = 1e-5):
    """Largest absolute and relative weight difference, and how many of how many weights differ
    by more than ``off``."""
    import numpy as np

    worst_abs = worst_rel = 0.0
    n_off = n_total = 0
    for x, y in zip(a, b):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        d = np.max(np.abs(x - y)) if x.size else 0.0
        worst_abs = max(worst_abs, float(d))
        worst_rel = max(worst_rel, float(d / (np.max(np.abs(x)) + 1e-12)))
        n_off += int(np.sum(np.abs(x - y) > off))
        n_total += x.size
    return worst_abs, worst_rel, n_off, n_total


def main(backend: str) -> None:
    if backend == "tensorflow":  # logical devices must exist before TensorFlow starts
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    x, y = _examples()
    single = _model()
    initial = single.get_weights()
    logs_single = single.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False).history
    if backend == "tensorflow":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            multi = _model()
            multi.set_weights(initial)
        replicas = strategy.num_replicas_in_sync
    else:
        import keras

        keras.distribution.set_distribution(keras.distribution.DataParallel())
        multi = _model()
        multi.set_weights(initial)
        replicas = len(keras.distribution.list_devices())
    logs_multi = multi.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False).history
    worst_abs, worst_rel, n_off, n_total = _diff(single.get_weights(), multi.get_weights())
    moved = _diff(initial, single.get_weights())[0]
    print(json.dumps({"replicas": replicas, "max_abs": worst_abs, "max_rel": worst_rel, "moved": moved,
                      "n_off": n_off, "n_weights": n_total,
                      "single": {k: v[-1] for k, v in logs_single.items()},
                      "multi": {k: v[-1] for k, v in logs_multi.items()}}))


if __name__ == "__main__":
    name = sys.argv[1]
    os.environ["KERAS_BACKEND"] = name
    if name == "jax":
        os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    main(name)
