"""Ground-truth dense correspondence between the sketch's and the reference's feature grids.

The sketch is drawn from I and the ground truth I_gt = a(I) is pixel-aligned with it, so
sketch-grid cell i shows the content around centre c_i. The reference is I_r(x) =
I_gt(f(x)) with the TPS backward map f. Reference cell j (centre r_j) therefore shows the
content at f(r_j); it shows cell i's content when f(r_j) lies inside cell i. For each i the
positive key is the j whose f(r_j) is closest to c_i (Chebyshev distance in cell units), and
it is *valid* when that distance is at most ``max_offset`` (0.5 = inside the cell): content
that left the frame, or was squeezed between reference cell centres, gets no target.
These are the positive keys of the paper's triplet loss.
"""

from __future__ import annotations

from keras_scft.augment.backend import Backend
from keras_scft.augment.sampling import pixel_centers
from keras_scft.augment.tps import tps_transform


def correspondence_targets(B: Backend, dst, coefficients, grid_height: int, grid_width: int,
                           max_offset: float = 0.5):
    """Positive reference index and validity for every sketch-grid cell.

    Args:
        dst, coefficients: the TPS (see :func:`keras_scft.augment.tps.fit_tps`).
        grid_height, grid_width: feature grid of both encoders (e.g. H/16, W/16).
        max_offset: largest Chebyshev distance, in cells, between c_i and f(r_j) that still
            counts as a correspondence.

    Returns:
        ``(target, valid)``: int32 [N, G] with values in [0, G), and float32 [N, G] in {0, 1};
        G = grid_height * grid_width, cells in row-major order.
    """
    n = B.core.shape(dst)[0]
    g = grid_height * grid_width
    centers = pixel_centers(B, grid_height, grid_width)  # [G, 2]
    seen = tps_transform(B, B.numpy.broadcast_to(centers[None], (n, g, 2)), dst, coefficients)
    # [N, G_sketch, G_ref]: Chebyshev distance in cells between c_i and f(r_j), one axis at a time
    cx, cy = centers[None, :, None, 0] * (grid_width / 2.0), centers[None, :, None, 1] * (grid_height / 2.0)
    sx, sy = seen[:, None, :, 0] * (grid_width / 2.0), seen[:, None, :, 1] * (grid_height / 2.0)
    distance = B.numpy.maximum(B.numpy.abs(cx - sx), B.numpy.abs(cy - sy))
    target = B.core.cast(B.numpy.argmin(distance, axis=-1), "int32")
    valid = B.core.cast(B.numpy.min(distance, axis=-1) <= max_offset, "float32")
    return target, valid


def sample_negatives(B: Backend, target, grid_height: int, grid_width: int, noise):
    """A random non-corresponding reference index per cell.

    On grids of at least 5x5 cells the negative lies >= 2 cells (Chebyshev, on the torus)
    from its target: a row and a column offset are drawn uniformly, and offsets that land
    in the target's 3x3 neighbourhood move 3 columns further. Smaller grids take any other
    cell.

    Args:
        target: int32 [N, G] positive indices.
        noise: float32 [N, G, 2] uniform in [0, 1) (the randomness, drawn by the caller).

    Returns:
        int32 [N, G] negative indices, never equal to ``target``.
    """
    g = grid_height * grid_width
    if grid_height < 5 or grid_width < 5:
        step = 1 + B.core.cast(B.numpy.floor(noise[..., 0] * (g - 1)), "int32")
        return (target + B.numpy.minimum(step, g - 1)) % g
    dy = B.numpy.minimum(B.core.cast(B.numpy.floor(noise[..., 0] * grid_height), "int32"), grid_height - 1)
    dx = B.numpy.minimum(B.core.cast(B.numpy.floor(noise[..., 1] * grid_width), "int32"), grid_width - 1)
    near_y = (dy <= 1) | (dy >= grid_height - 1)
    near_x = (dx <= 1) | (dx >= grid_width - 1)
    dx = B.numpy.where(near_y & near_x, dx + 3, dx)
    row = (target // grid_width + dy) % grid_height
    col = (target % grid_width + dx) % grid_width
    return row * grid_width + col
