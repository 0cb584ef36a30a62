"""Loading ``.keras`` files, those written by earlier versions of keras-scft included."""

from __future__ import annotations

import contextlib
import os
import warnings

import keras

from keras_scft.layers.padded_conv import ChannelPaddedConv2D
from keras_scft.layers.upsample_conv import UpsampleConcatConv2D

# Keras files address a layer's weights by its class name and rank among layers of that class
# ("layers/conv2d_3/vars/0"). These layers replaced Conv2D layers with the same variables
# (2026-11-27); files written before store their weights under Conv2D's name. (Layers without
# variables, like the block pooling ones, need no mapping.)
_REPLACED = {ChannelPaddedConv2D: "Conv2D", UpsampleConcatConv2D: "Conv2D"}


@contextlib.contextmanager
def _plain_class_names():
    """Give the replacement layers the class names of the layers they replaced, meanwhile."""
    original = {cls: cls.__name__ for cls in _REPLACED}
    try:
        for cls, name in _REPLACED.items():
            cls.__name__ = name
        yield
    finally:
        for cls, name in original.items():
            cls.__name__ = name


def load_model(path: str | os.PathLike, **kwargs) -> keras.Model:
    """``keras.saving.load_model``, falling back to the weight layout of files written before
    the fused convolutions (same variables, addressed under the plain Keras class names).

    A file loaded the old way gets one warning (saving it again writes the current layout).
    Raises the error of the plain load when neither layout loads.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = keras.saving.load_model(path, **kwargs)
        except ValueError as error:
            if "could not be loaded" not in str(error):
                raise
            first_error = error
        else:
            first_error = None
    if first_error is None:
        for warning in caught:  # the plain load's own warnings, as they would have been
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        return model
    try:
        with _plain_class_names():
            model = keras.saving.load_model(path, **kwargs)
    except Exception:  # noqa: BLE001 - not the old layout either: report the first error
        raise first_error from None
    warnings.warn(f"{path} was written by keras-scft before its fused decoder/image convolutions; "
                  "loaded in that weight layout. Save it again to write the current one.", stacklevel=2)
    return model
