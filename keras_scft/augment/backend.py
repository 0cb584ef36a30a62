"""The one place that touches Keras' private data-pipeline machinery.

Augmentation math in this package is written against a *backend namespace* ``B`` with the
sub-modules ``B.numpy``, ``B.nn``, ``B.linalg``, ``B.random`` and ``B.core`` (the layout of
``keras.src.backend.<name>``). Inside a ``tf.data`` pipeline ``B`` is TensorFlow even when
Keras runs on JAX; inside a jitted JAX step it is JAX. Keras implements that switch in
``keras.src.layers.preprocessing.data_layer.DataLayer``, which is private in Keras 3.15:
if Keras moves it, only this file changes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from keras.src.layers.preprocessing.data_layer import DataLayer
from keras.src.utils.backend_utils import DynamicBackend

Backend = DynamicBackend
"""Type of a backend namespace (``B.numpy.add``, ``B.random.uniform``, ...)."""


def active_backend() -> DynamicBackend:
    """The backend namespace of the running Keras backend (for use outside tf.data)."""
    return DynamicBackend()


Uniform = Callable[..., object]
"""``uniform(shape, low=0.0, high=1.0)`` -> float32 array of uniform draws."""


def backend_uniform(B: DynamicBackend, seed) -> Uniform:
    """Uniform draws from the backend's RNG (``seed``: a SeedGenerator or an int)."""
    return lambda shape, low=0.0, high=1.0: B.random.uniform(shape, low, high, dtype="float32", seed=seed)


def numpy_uniform(rng: np.random.Generator) -> Uniform:
    """Uniform draws from numpy: the same numbers on every backend and machine."""
    return lambda shape, low=0.0, high=1.0: rng.uniform(low, high, shape).astype(np.float32)


class AugmentLayer(DataLayer):
    """Base class of the augmentation layers.

    Subclasses implement ``call`` with ``self.backend`` (a :data:`Backend`), draw random
    numbers with ``self._get_seed_generator(self.backend._backend)``, and so run as graph ops
    inside ``tf.data.Dataset.map`` under any Keras backend, and as device ops inside a jitted
    step under the active backend.
    """

    def seed_generator(self):
        """The seed generator for the backend this call runs on."""
        return self._get_seed_generator(self.backend._backend)


__all__ = ["AugmentLayer", "Backend", "Uniform", "active_backend", "backend_uniform", "numpy_uniform"]
