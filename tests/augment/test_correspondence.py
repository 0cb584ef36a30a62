import numpy as np
import pytest

from keras_scft.augment import tps
from keras_scft.augment.backend import active_backend, numpy_uniform
from keras_scft.augment.correspondence import correspondence_targets, sample_negatives

pytestmark = pytest.mark.multi_backend

SIZE, CELL = 128, 16
GRID = SIZE // CELL


def _blocks():
    """Image whose 8x8 cells each have their own colour: [1, 128, 128, 3] in [-1, 1]."""
    rng = np.random.default_rng(0)
    colors = rng.permutation(GRID * GRID * 4)[: GRID * GRID]  # distinct codes
    rgb = np.stack([colors % 8, (colors // 8) % 8, colors // 64], -1) / 7.0 * 2 - 1
    cells = rgb.reshape(GRID, GRID, 3).astype("float32")
    return np.repeat(np.repeat(cells, CELL, 0), CELL, 1)[None], cells


def _warp_blocks(seed, max_offset, jitter=0.12):
    B = active_backend()
    image, cells = _blocks()
    dst = tps.sample_tps_destinations(B, numpy_uniform(np.random.default_rng(seed)), 1, grid_size=5, jitter=jitter)
    coef = tps.fit_tps(B, dst, tps.control_grid(B, 5))
    reference = np.asarray(tps.tps_warp(B, image, dst, coef, fill_value=-1.0, field_stride=1))
    target, valid = correspondence_targets(B, dst, coef, GRID, GRID, max_offset=max_offset)
    return reference[0], cells, np.asarray(target)[0], np.asarray(valid)[0]


@pytest.mark.parametrize("seed", range(12))
def test_reference_cell_shows_the_sketch_cell_content(seed):
    reference, cells, target, valid = _warp_blocks(seed, max_offset=0.4)
    assert valid.mean() > 0.3
    for i in np.flatnonzero(valid):
        j = target[i]
        r, c = divmod(j, GRID)
        # the four pixels around the centre of reference cell j
        patch = reference[r * CELL + 7 : r * CELL + 9, c * CELL + 7 : c * CELL + 9]
        np.testing.assert_allclose(patch, np.broadcast_to(cells[divmod(i, GRID)], patch.shape), atol=1e-4)


def test_default_tolerance_mostly_matches():
    hits = total = 0
    for seed in range(8):
        reference, cells, target, valid = _warp_blocks(seed, max_offset=0.5)
        for i in np.flatnonzero(valid):
            r, c = divmod(target[i], GRID)
            total += 1
            patch = reference[r * CELL + 7 : r * CELL + 9, c * CELL + 7 : c * CELL + 9].reshape(4, 3)
            hits += np.any(np.all(np.abs(patch - cells[divmod(i, GRID)]) < 1e-3, axis=-1))
    # at the tolerance's edge f(r_j) sits on a cell border: one of the 4 centre pixels shows it
    assert hits / total > 0.99 and total > 8 * GRID * GRID * 0.6


def test_content_that_leaves_the_frame_is_invalid():
    B = active_backend()
    src = np.asarray(tps.control_grid(B, 3))
    dst = (src + np.array([1.0, 0.0], "float32"))[None]  # everything moves half an image right
    coef = tps.fit_tps(B, dst, src)
    target, valid = correspondence_targets(B, dst, coef, 4, 4)
    valid = np.asarray(valid).reshape(4, 4)
    np.testing.assert_array_equal(valid[:, :2], 1.0)
    np.testing.assert_array_equal(valid[:, 2:], 0.0)
    np.testing.assert_array_equal(np.asarray(target).reshape(4, 4)[:, :2], np.array([[2, 3], [6, 7], [10, 11], [14, 15]]))


@pytest.mark.parametrize("grid", [(4, 4), (8, 8), (6, 9)])
def test_negatives_differ_from_targets(grid):
    B = active_backend()
    gh, gw = grid
    rng = np.random.default_rng(5)
    target = rng.integers(0, gh * gw, (3, gh * gw)).astype("int32")
    noise = rng.uniform(0, 1, (3, gh * gw, 2)).astype("float32")
    negative = np.asarray(sample_negatives(B, target, gh, gw, noise))
    assert negative.min() >= 0 and negative.max() < gh * gw
    assert np.all(negative != target)
    if gh >= 5 and gw >= 5:
        ty, tx = np.divmod(target, gw)
        ny, nx = np.divmod(negative, gw)
        dy = np.minimum(np.abs(ty - ny), gh - np.abs(ty - ny))
        dx = np.minimum(np.abs(tx - nx), gw - np.abs(tx - nx))
        assert np.all(np.maximum(dy, dx) >= 2)
