"""Loading ``.keras`` files, those written by earlier versions of keras-scft included."""

from __future__ import annotations

import contextlib
import os
import warnings

import keras

from keras_scft.layers.instance_norm import InstanceNormalization
from keras_scft.layers.padded_conv import ChannelPaddedConv2D, SpaceToDepthConv2D
from keras_scft.layers.upsample_conv import UpsampleConcatConv2D

# Keras files address a layer's weights by its class name and rank among layers of that class
# ("layers/conv2d_3/vars/0"). Layers that replaced others with the same variables make older
# files store those weights under the replaced class's name. Each change of names: what wrote
# the files from before it, and the names our classes had until then. (Layers without
# variables, like the block pooling ones, need no mapping.) Newest first; a file from before
# a change also predates every newer one, so its layout is the union down to that change.
_RENAMES = (
    ("before its one-pass instance normalization (2026-11-29)", {InstanceNormalization: "GroupNormalization"}),
    ("before its space-to-depth convolutions (2026-11-27)", {SpaceToDepthConv2D: "Conv2D"}),
    ("before its fused decoder/image convolutions (2026-11-27)",
     {ChannelPaddedConv2D: "Conv2D", UpsampleConcatConv2D: "Conv2D"}),
)
_LAYOUTS = tuple((written, {cls: name for _, renames in _RENAMES[:i + 1] for cls, name in renames.items()})
                 for i, (written, _) in enumerate(_RENAMES))


@contextlib.contextmanager
def _class_names(names: dict):
    """Give our classes the given class names, meanwhile."""
    original = {cls: cls.__name__ for cls in names}
    try:
        for cls, name in names.items():
            cls.__name__ = name
        yield
    finally:
        for cls, name in original.items():
            cls.__name__ = name


def load_model(path: str | os.PathLike, **kwargs) -> keras.Model:
    """``keras.saving.load_model``, falling back to the weight layouts of files written by
    earlier keras-scft versions (same variables, addressed under other class names).

    A file loaded an old way gets one warning (saving it again writes the current layout).
    Raises the error of the plain load when no layout loads.
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
    for written, names in _LAYOUTS:
        try:  # a failed attempt's warnings are about the layout, not the file: dropped
            with warnings.catch_warnings(), _class_names(names):
                warnings.simplefilter("ignore")
                model = keras.saving.load_model(path, **kwargs)
        except Exception:  # noqa: BLE001 - not this layout either
            continue
        warnings.warn(f"{path} was written by keras-scft {written}; loaded in that weight layout. "
                      "Save it again to write the current one.", stacklevel=2)
        return model
    raise first_error
