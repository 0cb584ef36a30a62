"""Coordinate grids and bilinear resampling of image batches.

Coordinates are *normalized*: x (column) and y (row) in [-1, 1], where -1 and 1 are the
outer edges of the image and pixel centres sit at ``(i + 0.5) / size * 2 - 1``
(``align_corners=False``). The same convention holds at every resolution, so a point keeps
its normalized coordinates between the image and a feature grid of another size.
"""

from __future__ import annotations

from keras_scft.augment.backend import Backend

FILL_MODES = ("constant", "nearest")


def pixel_centers(B: Backend, height: int, width: int, margin: int = 0):
    """Normalized (x, y) of every pixel centre, row-major: float32 [(h + 2m) * (w + 2m), 2].

    ``margin`` adds that many rings of virtual pixels outside the image (centres beyond
    [-1, 1]).
    """
    xs = (B.numpy.arange(-margin, width + margin, dtype="float32") + 0.5) / width * 2.0 - 1.0
    ys = (B.numpy.arange(-margin, height + margin, dtype="float32") + 0.5) / height * 2.0 - 1.0
    h, w = height + 2 * margin, width + 2 * margin
    gx = B.numpy.tile(xs[None, :], (h, 1))
    gy = B.numpy.tile(ys[:, None], (1, w))
    return B.numpy.reshape(B.numpy.stack([gx, gy], axis=-1), (h * w, 2))


def bilinear_sample(B: Backend, images, coords, fill_mode: str = "constant", fill_value: float = 1.0):
    """Sample ``images`` at normalized coordinates with bilinear interpolation.

    Args:
        B: backend namespace.
        images: float [N, H, W, C].
        coords: float32 [N, P, 2], normalized (x, y) per output point.
        fill_mode: ``"constant"`` (points outside the image take ``fill_value``, blended
            bilinearly at the border) or ``"nearest"`` (clamp to the border pixel).
        fill_value: value outside the image in constant mode (1.0 = white in [-1, 1]).

    Returns:
        float [N, P, C].

    The image is padded by one pixel (fill value, or edge copies for ``nearest``) so that the
    four neighbours of any point need no bounds checks. (``keras.ops.image.map_coordinates``
    on a batch needs 4-D coordinates and interpolates over batch and channel too: 16 gathers
    a point instead of 4.)
    """
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
    shape = B.core.shape(images)
    n, h, w, c = shape[0], shape[1], shape[2], shape[3]
    x = (coords[..., 0] + 1.0) * 0.5 * w - 0.5
    y = (coords[..., 1] + 1.0) * 0.5 * h - 0.5
    if fill_mode == "nearest":
        x = B.numpy.clip(x, 0.0, w - 1.0)
        y = B.numpy.clip(y, 0.0, h - 1.0)
        padded = B.numpy.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="symmetric")
    else:
        padded = B.numpy.pad(
            images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="constant", constant_values=fill_value
        )
    x0 = B.numpy.floor(x)
    y0 = B.numpy.floor(y)
    wx = (x - x0)[..., None]
    wy = (y - y0)[..., None]
    outside = (x0 < -1.0) | (x0 > w - 1.0) | (y0 < -1.0) | (y0 > h - 1.0)
    # top-left neighbour in the padded image: row y0 + 1 in [0, h], column x0 + 1 in [0, w]
    row = B.core.cast(B.numpy.clip(y0, -1.0, h - 1.0), "int32") + 1
    col = B.core.cast(B.numpy.clip(x0, -1.0, w - 1.0), "int32") + 1
    stride = w + 2
    base = (B.numpy.arange(n, dtype="int32") * ((h + 2) * stride))[:, None]
    flat = B.numpy.reshape(padded, (-1, c))
    index = base + row * stride + col

    def pixel(offset):
        return B.numpy.take(flat, index + offset, axis=0)

    top = pixel(0) * (1.0 - wx) + pixel(1) * wx
    bottom = pixel(stride) * (1.0 - wx) + pixel(stride + 1) * wx
    out = top * (1.0 - wy) + bottom * wy
    if fill_mode == "constant":
        out = B.numpy.where(outside[..., None], B.numpy.full_like(out, fill_value), out)
    return out
