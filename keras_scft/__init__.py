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

from keras_scft.augment.example import SelfAugment
from keras_scft.inference import colorize, load_generator
from keras_scft.layers import (PatchDiscriminator, SCFTAttention, SCFTGenerator, build_discriminator,
                               build_generator, build_vgg_features)
from keras_scft.model import ColorizerModel

__all__ = [
    "ColorizerModel", "PatchDiscriminator", "SCFTAttention", "SCFTGenerator", "SelfAugment",
    "__version__", "build_discriminator", "build_generator", "build_vgg_features", "colorize",
    "load_generator",
]
