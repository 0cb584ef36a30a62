"""Per-backend train/test steps of :class:`keras_scft.ColorizerModel`.

Each module exposes ``train_step(model, ...)`` and ``test_step(model, ...)`` with the
signature its Keras trainer expects; the loss math is the model's, shared by all.
"""

import importlib

import keras

_MODULES = {"tensorflow": "keras_scft.steps.tensorflow", "jax": "keras_scft.steps.jax",
            "torch": "keras_scft.steps.torch"}


def backend_steps():
    """The step module of the running Keras backend."""
    backend = keras.backend.backend()
    if backend not in _MODULES:
        raise NotImplementedError(f"training on the {backend!r} backend is not supported; "
                                  "use tensorflow or jax")
    return importlib.import_module(_MODULES[backend])
