"""Leave TensorFlow unimported on runs of other backends.

Keras asks whether TensorFlow is installed (``tf.available``) when it sets the random seeds
and whenever it serializes an object (compiling our model, getting a config, saving a
checkpoint), and asking imports it: 2.7-2.9 s on a 2-core CPU, on every JAX run of a machine
where TensorFlow is installed (keras-scft depends on it), for checks that cannot succeed:
they look for TensorFlow objects (``tf.TensorShape``, ``tf.DType``, ``tf.TypeSpec``) or seed
TensorFlow's random ops, and neither exists in a process that has not imported TensorFlow.

Inside :func:`tensorflow_left_unimported` Keras counts TensorFlow as available only once it is
imported (by anyone). This reaches into Keras' private ``keras.src.utils.module_utils``; where
that module has changed, the context does nothing (the import then happens as before) and
``tests/utils/test_lazy_tensorflow.py`` fails, so that a Keras upgrade that moves it is noticed.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import keras


def _lazy_tensorflow():
    """Keras' lazy ``tensorflow`` module object, or None where Keras has no such object."""
    try:
        from keras.src.utils import module_utils
    except ImportError:
        return None
    lazy = getattr(module_utils, "tensorflow", None)
    return lazy if isinstance(lazy, module_utils.LazyModule) else None


class _AvailableOnceImported:
    """Mixed into the class of Keras' lazy module: ``available`` without importing."""

    @property
    def available(self) -> bool:
        return self.name in sys.modules and super().available


@contextlib.contextmanager
def tensorflow_left_unimported() -> Iterator[None]:
    """Within the block, Keras imports TensorFlow only if someone else does first.

    A no-op on the TensorFlow backend, where TensorFlow is already imported, or where Keras'
    lazy module is not the one this was written for.
    """
    lazy = _lazy_tensorflow()
    if (lazy is None or isinstance(lazy, _AvailableOnceImported)  # None, or inside another such block
            or keras.backend.backend() == "tensorflow" or lazy.name in sys.modules):
        yield
        return
    original = type(lazy)
    lazy.__class__ = type(f"Deferred{original.__name__}", (_AvailableOnceImported, original), {})
    try:
        yield
    finally:
        lazy.__class__ = original
