"""Where does the sketch look in the reference? The SCFT attention view of the paper's Fig. 7.

For a few query points on the sketch, the ``top_k`` reference cells of the feature grid with
the largest attention weight are outlined, one colour per query::

    sketch (query points marked) | reference (top-k cells outlined) | colorized (optional)

The drawing functions are pure numpy / PIL; :func:`attention_for_pair` runs the generator.
Cells are row-major over a (rows, cols) grid = network size / stride, so cell ``i`` covers
rows ``i // cols`` and columns ``i % cols`` of that grid; pixel points are ``(x, y)``.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from keras_scft.data.io import resize_to
from keras_scft.inference import model_size, to_unit
from keras_scft.layers.generator import SCFTGenerator

# Distinct, saturated colours that read on white paper and on most references.
PALETTE = ((230, 25, 75), (0, 130, 200), (60, 180, 75), (245, 130, 48),
           (145, 30, 180), (0, 190, 190), (240, 50, 230), (128, 128, 0))
PANEL_GAP = 8  # white pixels between panels

Point = tuple[float, float]
Grid = tuple[int, int]


def grid_points(height: int, width: int, rows: int = 2, cols: int = 2) -> list[Point]:
    """Query points at the centres of a ``rows`` x ``cols`` tiling of an image, row by row."""
    return [((j + 0.5) * width / cols, (i + 0.5) * height / rows)
            for i in range(rows) for j in range(cols)]


def check_points(points, image_size: tuple[int, int]) -> None:
    """Raise ValueError unless there are 1 to ``len(PALETTE)`` points, all inside (height, width)."""
    height, width = image_size
    if not 1 <= len(points) <= len(PALETTE):
        raise ValueError(f"need 1 to {len(PALETTE)} query points, got {len(points)}")
    for x, y in points:
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(f"query point ({x:g}, {y:g}) lies outside the {width}x{height} sketch "
                             f"(x must be in [0, {width}), y in [0, {height}))")


def point_cell(point: Point, image_size: tuple[int, int], grid: Grid) -> int:
    """Row-major grid cell holding pixel ``(x, y)`` (inside the image) of an image of (height, width)."""
    (x, y), (height, width) = point, image_size
    row, col = int(y * grid[0] / height), int(x * grid[1] / width)
    return row * grid[1] + col


def cell_box(cell: int, grid: Grid, image_size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Pixel rectangle ``(x0, y0, x1, y1)`` (exclusive end) of ``cell`` in an image of (height, width)."""
    (rows, cols), (height, width) = grid, image_size
    row, col = divmod(cell, cols)
    return (col * width / cols, row * height / rows, (col + 1) * width / cols, (row + 1) * height / rows)


def top_cells(alpha: np.ndarray, cells, k: int = 3) -> np.ndarray:
    """The ``k`` reference cells each query cell attends to most.

    Args:
        alpha: float [N_sketch, N_reference], rows = sketch cells (SCFT attention, rows sum to 1).
        cells: Q sketch cell indices.

    Returns:
        int [Q, k] reference cell indices, largest weight first (ties: lower index first).
    """
    rows = np.asarray(alpha)[np.asarray(cells, int)]
    return np.argsort(-rows, axis=-1, kind="stable")[:, :k]


def attention_view(sketch: np.ndarray, reference: np.ndarray, alpha: np.ndarray, grid: Grid,
                   points, colorized: np.ndarray | None = None, top_k: int = 3,
                   panel_height: int = 256) -> np.ndarray:
    """Draw the attention view.

    Args:
        sketch: uint8 [H, W, 1] or [H, W, 3], white paper.
        reference: uint8 [h, w, 3].
        alpha: float [N, N] attention of this pair, N = rows * cols of ``grid``.
        grid: (rows, cols) of the feature grid both images were mapped to.
        points: up to ``len(PALETTE)`` query points ``(x, y)`` in sketch pixels.
        colorized: optional uint8 [H', W', 3], shown as a third panel.
        top_k: reference cells outlined per query.
        panel_height: every panel is scaled to this height, keeping its aspect ratio.

    Returns:
        uint8 [panel_height, W_total, 3] RGB, panels side by side on white.
    """
    points = list(points)
    n = grid[0] * grid[1]
    if np.shape(alpha) != (n, n):
        raise ValueError(f"alpha must be [{n}, {n}] for a {grid[0]}x{grid[1]} grid, got {np.shape(alpha)}")
    sketch_size = sketch.shape[:2]
    check_points(points, sketch_size)
    best = top_cells(alpha, [point_cell(p, sketch_size, grid) for p in points], top_k)

    sketch_panel = _panel(sketch, panel_height)
    draw = ImageDraw.Draw(sketch_panel)
    scale = panel_height / sketch_size[0]
    radius = max(4, panel_height // 32)
    for (x, y), colour in zip(points, PALETTE):
        x, y = x * scale, y * scale
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour, outline=(0, 0, 0))

    reference_panel = _panel(reference, panel_height)
    draw = ImageDraw.Draw(reference_panel)
    panel_size = (reference_panel.height, reference_panel.width)
    line = max(2, panel_height // 128)
    for i, (cells, colour) in enumerate(zip(best, PALETTE)):
        inset = i * line  # nest the boxes of different queries that pick the same cell
        for cell in cells:
            x0, y0, x1, y1 = cell_box(int(cell), grid, panel_size)
            draw.rectangle((x0 + inset, y0 + inset, x1 - 1 - inset, y1 - 1 - inset),
                           outline=colour, width=line)

    panels = [sketch_panel, reference_panel]
    if colorized is not None:
        panels.append(_panel(colorized, panel_height))
    width = sum(p.width for p in panels) + PANEL_GAP * (len(panels) - 1)
    canvas = Image.new("RGB", (width, panel_height), (255, 255, 255))
    left = 0
    for panel in panels:
        canvas.paste(panel, (left, 0))
        left += panel.width + PANEL_GAP
    return np.asarray(canvas)


def attention_for_pair(generator: SCFTGenerator, sketch: np.ndarray, reference: np.ndarray,
                       size=None) -> tuple[np.ndarray, Grid]:
    """SCFT attention of one pair at the network size.

    Args:
        sketch: uint8 [H, W, 1], white paper; reference: uint8 [h, w, 3].
        size: network size (int or (h, w)); default as in :func:`keras_scft.inference.colorize`.

    Returns:
        (alpha float32 [N, N] with rows summing to 1, grid (rows, cols)), N = rows * cols.
    """
    net = model_size(generator, sketch.shape[0], sketch.shape[1], size)
    s = to_unit(resize_to(sketch, net))[None]
    r = to_unit(resize_to(reference, net))[None]
    alpha = np.asarray(generator.attention_maps(s, r), np.float32)[0]
    return alpha, (net[0] // generator.stride, net[1] // generator.stride)


def _panel(image: np.ndarray, height: int) -> Image.Image:
    """uint8 [H, W, 1 or 3] -> RGB PIL image ``height`` pixels tall."""
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).convert("RGB")
    width = max(1, math.floor(image.shape[1] * height / image.shape[0] + 0.5))
    return pil.resize((width, height), Image.Resampling.LANCZOS)
