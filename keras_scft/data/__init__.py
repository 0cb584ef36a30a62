"""Where images come from: robust image reading, dataset sources, the built-in OpenMoji data.

Records are dicts ``{"image": uint8 [H, W, 3], "sketch": uint8 [H, W, 1] (optional), "name": str}``
with white-background line art; the model side converts them to float [-1, 1].
"""

from keras_scft.data.io import (
    IMAGE_EXTENSIONS,
    UnreadableImageError,
    read_image,
    resize_square,
    resize_to,
)
from keras_scft.data.sources import (
    SOURCE_TYPES,
    ImageFolder,
    ImageSource,
    OpenMojiSource,
    PairedFolders,
    Pix2PixFolder,
    SkippedImageWarning,
    open_source,
    source_from_spec,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "SOURCE_TYPES",
    "ImageFolder",
    "ImageSource",
    "OpenMojiSource",
    "PairedFolders",
    "Pix2PixFolder",
    "SkippedImageWarning",
    "UnreadableImageError",
    "open_source",
    "read_image",
    "resize_square",
    "resize_to",
    "source_from_spec",
]
