"""The attention view (paper Fig. 7): cell geometry, top-k choice, drawing, the model's alpha."""

import numpy as np
import pytest

from keras_scft.attention_view import (
    PALETTE,
    PANEL_GAP,
    attention_for_pair,
    attention_view,
    cell_box,
    check_points,
    grid_points,
    point_cell,
    top_cells,
)
from keras_scft.layers.generator import build_generator


def test_grid_points_are_tile_centres():
    assert grid_points(100, 200) == [(50, 25), (150, 25), (50, 75), (150, 75)]
    assert grid_points(10, 10, 1, 1) == [(5, 5)]


def test_point_cell_and_cell_box_agree():
    grid, size = (4, 8), (64, 96)  # 16x12-pixel cells
    assert point_cell((0, 0), size, grid) == 0
    assert point_cell((95.9, 63.9), size, grid) == 31
    assert point_cell((40, 20), size, grid) == 1 * 8 + 3
    for x, y in np.random.default_rng(0).uniform((0, 0), (96, 64), (50, 2)):
        x0, y0, x1, y1 = cell_box(point_cell((x, y), size, grid), grid, size)
        assert x0 <= x < x1 and y0 <= y < y1


def test_top_cells_orders_by_weight():
    alpha = np.full((4, 4), 0.01)
    alpha[2] = [0.1, 0.5, 0.0, 0.4]
    alpha[3, 0] = 0.97
    np.testing.assert_array_equal(top_cells(alpha, [2, 3], k=2), [[1, 3], [0, 1]])


def _synthetic_view(**kwargs):
    """Query at sketch cell 0 of a 4x4 grid that attends most to reference cells 5, 10, 15."""
    alpha = np.full((16, 16), 0.001)
    alpha[0, [5, 10, 15]] = [0.5, 0.3, 0.2]
    sketch = np.full((64, 64, 1), 255, np.uint8)
    reference = np.full((64, 64, 3), 128, np.uint8)
    return attention_view(sketch, reference, alpha, (4, 4), [(8, 8)], **kwargs)


def test_view_marks_the_query_and_outlines_its_top_cells():
    view = _synthetic_view(panel_height=64)
    assert view.shape == (64, 2 * 64 + PANEL_GAP, 3) and view.dtype == np.uint8
    colour = PALETTE[0]
    assert tuple(view[8, 8]) == colour  # the query point, on the sketch panel
    reference = view[:, 64 + PANEL_GAP:]
    for cell in (5, 10, 15):  # 16-pixel cells: top-left corner pixel of each outline
        row, col = divmod(cell, 4)
        assert tuple(reference[16 * row, 16 * col + 8]) == colour
    assert tuple(reference[0, 8]) == (128, 128, 128)  # cell 0 is not among the top 3


def test_view_scales_panels_and_adds_the_colorized_panel():
    colorized = np.zeros((32, 64, 3), np.uint8)
    view = _synthetic_view(colorized=colorized, panel_height=128)
    assert view.shape == (128, 128 + 128 + 256 + 2 * PANEL_GAP, 3)
    assert tuple(view[16, 16]) == PALETTE[0]  # (8, 8) scaled by 2


def test_bad_points_and_alpha_are_refused():
    with pytest.raises(ValueError, match="outside the 64x32 sketch"):
        check_points([(64, 0)], (32, 64))
    with pytest.raises(ValueError, match="need 1 to 8 query points"):
        check_points([(1, 1)] * 9, (32, 64))
    with pytest.raises(ValueError, match=r"alpha must be \[16, 16\]"):
        attention_view(np.zeros((8, 8, 1), np.uint8), np.zeros((8, 8, 3), np.uint8),
                       np.zeros((4, 4)), (4, 4), [(1, 1)])


@pytest.mark.multi_backend
def test_attention_for_pair_is_a_row_stochastic_map_at_the_network_size():
    generator = build_generator(widths=(8, 8, 16, 16, 16, 16, 32, 32, 32, 32), residual_blocks=1)
    rng = np.random.default_rng(0)
    sketch = rng.integers(0, 256, (40, 70, 1), dtype=np.uint8)
    reference = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)
    alpha, grid = attention_for_pair(generator, sketch, reference)
    assert grid == (2, 4)  # 40x70 -> network 32x64 -> 2x4 cells
    assert alpha.shape == (8, 8)
    np.testing.assert_allclose(alpha.sum(axis=1), 1.0, atol=1e-5)
    assert attention_for_pair(generator, sketch, reference, size=64)[1] == (4, 4)
