"""Helpers shared by the tests (import as ``from tests.helpers import ...``)."""

import os

import pytest


def requires_backend(*names: str):
    """Skip a test unless the active Keras backend is one of ``names``."""
    return pytest.mark.skipif(
        os.environ.get("KERAS_BACKEND", "tensorflow") not in names,
        reason=f"needs the {' or '.join(names)} backend",
    )


# Tests that start training processes of their own run one after another on one pytest-xdist
# worker (the README's test command uses `-n 2 --dist loadgroup`): two of them at once would
# put five or more training processes on CI's two cores and in its memory.
own_processes = pytest.mark.xdist_group("own_processes")


TINY_WIDTHS = (8, 8, 16, 16, 16, 16, 32, 32, 32, 32)
"""Encoder widths of the tiny generator used across tests (d_v = 216)."""


def tiny_colorizer(augment=None, perceptual=None, seed: int = 0):
    """A small ColorizerModel (1 residual block, 3-layer D) for fast tests."""
    import keras

    from keras_scft import ColorizerModel, build_discriminator, build_generator

    keras.utils.set_random_seed(seed)
    return ColorizerModel(generator=build_generator(widths=TINY_WIDTHS, residual_blocks=1),
                          discriminator=build_discriminator(widths=(16, 32, 32)),
                          perceptual=perceptual, augment=augment)


def run_layer_test(make_layer, inputs, tmp_path, call_kwargs=None, atol=1e-6):
    """The standard checks for one of our layers/networks (after keras-hub's run_layer_test).

    * eager call on ``inputs`` (numpy) and a symbolic call on ``keras.Input`` of the same
      shapes give outputs of the same structure and shapes;
    * ``from_config(get_config())`` rebuilt with the same weights reproduces the outputs;
    * a ``.keras`` save/load round trip (inside a functional wrapper) reproduces them;
    * the layer also runs under the ``mixed_bfloat16`` policy.
    Returns the eager outputs.
    """
    import keras
    import numpy as np

    call_kwargs = call_kwargs or {}
    layer = make_layer()
    eager = layer(inputs, **call_kwargs)
    flat_eager = [np.asarray(x) for x in keras.tree.flatten(eager)]

    def symbolic_input(x, name=None):
        return keras.Input(batch_shape=x.shape, dtype=str(x.dtype), name=name)

    if isinstance(inputs, dict):
        symbolic_inputs = {k: symbolic_input(v, k) for k, v in inputs.items()}
    else:
        symbolic_inputs = keras.tree.map_structure(symbolic_input, inputs)
    symbolic = layer(symbolic_inputs, **call_kwargs)
    for a, b in zip(flat_eager, keras.tree.flatten(symbolic)):
        assert tuple(a.shape) == tuple(b.shape), (a.shape, b.shape)

    clone = layer.__class__.from_config(layer.get_config())
    clone(inputs, **call_kwargs)
    clone.set_weights(layer.get_weights())
    for a, b in zip(flat_eager, keras.tree.flatten(clone(inputs, **call_kwargs))):
        np.testing.assert_allclose(a, np.asarray(b), atol=atol)

    wrapper = keras.Model(symbolic_inputs, symbolic)
    path = tmp_path / "layer.keras"
    wrapper.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(flat_eager, keras.tree.flatten(loaded(inputs))):
        np.testing.assert_allclose(a, np.asarray(b), atol=atol)

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = make_layer()(inputs, **call_kwargs)
        assert all(np.all(np.isfinite(np.asarray(x, np.float32))) for x in keras.tree.flatten(mixed))
    finally:
        keras.config.set_dtype_policy(previous)
    return eager


def vjp(fn, args, cotangent) -> list:
    """Gradients of ``sum(fn(*args) * cotangent)`` with respect to every array in ``args``, as
    numpy arrays, on the current backend (JAX or TensorFlow)."""
    import keras
    import numpy as np

    if keras.backend.backend() == "jax":
        import jax

        return [np.asarray(g) for g in
                jax.grad(lambda *a: (fn(*a) * cotangent).sum(), argnums=tuple(range(len(args))))(*args)]
    import tensorflow as tf

    tensors = [tf.constant(a) for a in args]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        y = tf.reduce_sum(fn(*tensors) * cotangent)
    return [g.numpy() for g in tape.gradient(y, tensors)]


def conv_case(shape, filters: int, kernel_size: int = 3, seed: int = 0):
    """Seeded float32 normal ``x`` of ``shape`` [B, H, W, C] and ``kernel`` [k, k, C, filters]."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape).astype("float32"),
            rng.normal(size=(kernel_size, kernel_size, shape[-1], filters)).astype("float32"))


def assert_same_gradients(ours, plain, args, atol: float = 1e-4, seed: int = 2) -> None:
    """The gradients of ``ours(*args)`` with respect to every array in ``args`` equal those of
    ``plain(*args)`` within ``atol``, for a seeded normal cotangent of ``plain``'s output shape."""
    import keras
    import numpy as np

    shape = keras.ops.shape(plain(*args))
    cotangent = np.random.default_rng(seed).normal(size=tuple(int(n) for n in shape)).astype("float32")
    for mine, theirs in zip(vjp(ours, args, cotangent), vjp(plain, args, cotangent), strict=True):
        np.testing.assert_allclose(mine, theirs, atol=atol)
