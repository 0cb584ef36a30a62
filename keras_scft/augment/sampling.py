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
    """
    return bilinear_sample_xy(B, images, coords[..., 0], coords[..., 1], fill_mode, fill_value)


def bilinear_sample_xy(B: Backend, images, x, y, fill_mode: str = "constant", fill_value: float = 1.0):
    """:func:`bilinear_sample` with the normalized coordinates given as two float32 [N, P]
    arrays ``x`` and ``y`` (no [N, P, 2] array to build and slice)."""
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
    shape = B.core.shape(images)
    n, h, w, c = shape[0], shape[1], shape[2], shape[3]
    # Pixel units, then clamped so the 2x2 neighbourhood always lies in the padded image: one
    # ring of padding before, two after (fill value or edge copies). In constant mode a point
    # outside the image clamps to the padding ring with weight 0 on the image side, so it
    # reads exactly the fill value (no mask); in nearest mode it clamps to the border pixel.
    # (``keras.ops.image.map_coordinates`` on a batch needs 4-D coordinates and interpolates
    # over batch and channel too: 16 gathers a point instead of 4.)
    low, high = (0.0, (w - 1.0, h - 1.0)) if fill_mode == "nearest" else (-1.0, (float(w), float(h)))
    x = B.numpy.clip(x * (0.5 * w) + (0.5 * w - 0.5), low, high[0])
    y = B.numpy.clip(y * (0.5 * h) + (0.5 * h - 0.5), low, high[1])
    pads = ((0, 0), (1, 2), (1, 2), (0, 0))
    if fill_mode == "nearest":
        padded = B.numpy.pad(images, pads, mode="symmetric")
    else:
        padded = B.numpy.pad(images, pads, mode="constant", constant_values=fill_value)
    x0 = B.numpy.floor(x)
    y0 = B.numpy.floor(y)
    wx = (x - x0)[..., None]
    wy = (y - y0)[..., None]
    stride = w + 3
    # top-left neighbour in the padded image: row y0 + 1, column x0 + 1
    base = (B.numpy.arange(n, dtype="int32") * ((h + 3) * stride) + stride + 1)[:, None]
    index = base + B.core.cast(y0, "int32") * stride + B.core.cast(x0, "int32")
    flat = B.numpy.reshape(padded, (-1, c))

    def pixel(offset):
        return B.numpy.take(flat, index + offset, axis=0)

    top_left = pixel(0)
    top = top_left + wx * (pixel(1) - top_left)
    bottom_left = pixel(stride)
    bottom = bottom_left + wx * (pixel(stride + 1) - bottom_left)
    return top + wy * (bottom - top)
