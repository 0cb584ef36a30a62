"""keras-scft: reference-based sketch colorization (SCFT, Lee et al. CVPR 2020) in Keras 3.

Public API::

    model = keras_scft.ColorizerModel(perceptual="lpips")   # generator + D + VGG
    model.compile()
    model.fit(...)                                            # see keras_scft.training
    images = keras_scft.colorize(model, sketches, references)  # uint8 in, uint8 out
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of CLI output

__version__ = "0.1.0"

# Public names load lazily (PEP 562), so that `import keras_scft.data...` in a worker process
# or `keras-scft --help` does not start Keras and TensorFlow.
_EXPORTS = {
    "ColorizerModel": "keras_scft.model",
    "SelfAugment": "keras_scft.augment.example",
    "colorize": "keras_scft.inference",
    "load_generator": "keras_scft.inference",
    "PatchDiscriminator": "keras_scft.layers",
    "SCFTAttention": "keras_scft.layers",
    "SCFTGenerator": "keras_scft.layers",
    "build_discriminator": "keras_scft.layers",
    "build_generator": "keras_scft.layers",
    "build_vgg_features": "keras_scft.layers",
    "LinearDecayTail": "keras_scft.schedules",
}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'keras_scft' has no attribute {name!r}")


__all__ = [
    "ColorizerModel", "LinearDecayTail", "PatchDiscriminator", "SCFTAttention", "SCFTGenerator", "SelfAugment",
    "__version__", "build_discriminator", "build_generator", "build_vgg_features", "colorize",
    "load_generator",
]
