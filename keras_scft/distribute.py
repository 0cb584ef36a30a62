"""Pick the multi-device engine of the running backend.

* ``mirrored``: ``tf.distribute.MirroredStrategy`` over the listed (default: all visible)
  GPUs, TensorFlow backend. Build and compile the model inside the returned scope.
* ``data_parallel``: ``keras.distribution.DataParallel`` over the listed (default: all)
  devices, JAX backend; set globally, the scope is a no-op.
* ``none``: one device.
"""

from __future__ import annotations

import contextlib

import keras

STRATEGIES = ("none", "mirrored", "data_parallel")


def distribution_scope(strategy: str = "none", devices=None):
    """Return ``(scope, replicas)``: a context manager to build the model in, and the number
    of devices the global batch is split over."""
    backend = keras.backend.backend()
    if strategy == "none":
        return contextlib.nullcontext(), 1
    if strategy == "mirrored":
        if backend != "tensorflow":
            raise ValueError(f'distribution strategy "mirrored" needs the tensorflow backend, running {backend}; '
                             'use "data_parallel" on jax')
        import tensorflow as tf

        mirrored = tf.distribute.MirroredStrategy(devices=devices)
        return mirrored.scope(), mirrored.num_replicas_in_sync
    if strategy == "data_parallel":
        if backend != "jax":
            raise ValueError(f'distribution strategy "data_parallel" needs the jax backend, running {backend}; '
                             'use "mirrored" on tensorflow')
        all_devices = keras.distribution.list_devices()
        chosen = devices or all_devices
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=chosen))
        return contextlib.nullcontext(), len(chosen)
    raise ValueError(f"unknown distribution strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")
