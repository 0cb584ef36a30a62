"""Initial weights drawn on the host.

On JAX, Keras' random initializers run ``jax.random`` eagerly, which compiles one small
device program per distinct weight shape: 70 of the 91 programs that building the
recipes/openmoji.json model compiled (about 10 of its 14 s on a 2-core CPU; the H100's cold
start spent ~25 s building). Drawing with numpy compiles nothing, on every backend: that
build takes 6.4 s (docs/benchmarks.md, "Initial weights drawn on the host").

The values are drawn in float32 by a ``numpy.random.Generator`` (PCG64): for the recipe's 92M
weights ~0.25 s, against ~4.8 s for float64 draws of numpy's legacy global generator and
their cast on this repo's 2-core CPU.

Unseeded draws take their generator's seed from numpy's global generator, shared by all threads
(and seeded by ``keras.utils.set_random_seed``); a thread that
builds a model whose weights it then overwrites (the checkpoint writer building its twin,
:mod:`keras_scft.training.checkpoints`) draws from a generator of its own inside
:func:`thread_private_draws`.
"""

from __future__ import annotations

import contextlib
import math
import threading

import keras
import numpy as np

_THREAD = threading.local()  # .generator: this thread's generator inside thread_private_draws


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) as Keras counts them: a conv kernel [*spatial, in, out] counts its
    receptive field; a dense kernel [in, out] does not."""
    if len(shape) < 2:
        return (shape[0], shape[0]) if shape else (1, 1)
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _on_device(values: np.ndarray):
    """JAX: ``jax.device_put`` (``jnp.asarray``, which Keras would use, compiles a copy
    program per shape); the other backends convert numpy arrays without compiling."""
    if keras.backend.backend() != "jax":
        return values
    import jax

    return jax.device_put(values)


def _check_seed(seed) -> None:
    if seed is not None and not isinstance(seed, int):
        raise ValueError(f"host initializers take an int seed or None, got {seed!r}")


@contextlib.contextmanager
def thread_private_draws(seed: int = 0):
    """Within this, in the calling thread only, unseeded host initializers draw from a
    generator of their own (seeded ``seed``) instead of numpy's global one, and take no
    default seed from Python's global ``random`` (Keras' initializers draw one that ours
    never use): the global generators other threads draw from stay as they were."""
    previous = getattr(_THREAD, "generator", None)
    _THREAD.generator = np.random.default_rng(seed)
    try:
        yield
    finally:
        _THREAD.generator = previous


def _generator(seed: int | None) -> np.random.Generator:
    """A fixed generator for an int seed; this thread's in :func:`thread_private_draws`; else a
    generator seeded by one draw of numpy's global generator (which
    ``keras.utils.set_random_seed`` seeds: same seed and build order, same weights)."""
    if seed is not None:
        return np.random.default_rng(seed)
    private = getattr(_THREAD, "generator", None)
    if private is not None:
        return private
    return np.random.default_rng(np.random.randint(0, 2**63 - 1, dtype=np.int64))


def _keras_seed(seed: int | None) -> int | None:
    """The seed for Keras' base class, which stores it unused: for None it would draw one
    from Python's global ``random``, so inside :func:`thread_private_draws` it gets 0."""
    return 0 if seed is None and getattr(_THREAD, "generator", None) is not None else seed


def _dtype(dtype) -> str:
    return keras.backend.standardize_dtype(dtype or keras.config.floatx())


@keras.saving.register_keras_serializable(package="keras_scft")
class HostGlorotUniform(keras.initializers.GlorotUniform):
    """``keras.initializers.GlorotUniform`` (uniform in +-sqrt(6 / (fan_in + fan_out))) drawn
    with numpy on the host.

    Args:
        seed: an int gives the same values on every call; None (default) draws from numpy's
            global generator, which ``keras.utils.set_random_seed`` seeds (same seed and
            build order, same weights).
    """

    def __init__(self, seed: int | None = None):
        _check_seed(seed)
        super().__init__(seed=_keras_seed(seed))
        self._init_seed = seed

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = _fans(tuple(shape))
        limit = math.sqrt(6.0 / max(1.0, fan_in + fan_out))
        values = _generator(self._init_seed).random(tuple(shape), dtype=np.float32)
        values *= np.float32(2.0 * limit)
        values -= np.float32(limit)
        return _on_device(values.astype(_dtype(dtype), copy=False))

    def get_config(self) -> dict:
        return {"seed": self._init_seed}


@keras.saving.register_keras_serializable(package="keras_scft")
class HostRandomNormal(keras.initializers.RandomNormal):
    """``keras.initializers.RandomNormal(mean, stddev)`` drawn with numpy on the host (seed as
    :class:`HostGlorotUniform`)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        _check_seed(seed)
        super().__init__(mean=mean, stddev=stddev, seed=_keras_seed(seed))
        self._init_seed = seed

    def __call__(self, shape, dtype=None):
        values = _generator(self._init_seed).standard_normal(tuple(shape), dtype=np.float32)
        values *= np.float32(self.stddev)
        values += np.float32(self.mean)
        return _on_device(values.astype(_dtype(dtype), copy=False))

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self._init_seed}
