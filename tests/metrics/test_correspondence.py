"""Attention-correspondence accuracy: hand-built attention with known hits and misses."""

import numpy as np
import pytest

from keras_scft.layers.generator import build_generator
from keras_scft.metrics.correspondence import (
    attention_hits,
    correspondence_accuracy,
    evaluate_correspondence,
)

GRID = (3, 4)  # 12 cells, row-major: cell = row * 4 + col
N = GRID[0] * GRID[1]
TINY_WIDTHS = (8, 8, 16, 16, 16, 16, 32, 32, 32, 32)


def _cell(row, col):
    return row * GRID[1] + col


def _one_hot_alpha(attended):
    """alpha [B, N, N] whose row i attends fully to attended[b, i]."""
    attended = np.asarray(attended)
    alpha = np.full(attended.shape + (N,), 0.01, np.float32)
    np.put_along_axis(alpha, attended[..., None], 1.0, axis=-1)
    return alpha / alpha.sum(-1, keepdims=True)


def _case():
    """Targets at cell (1, 1) for every sketch cell; the attention picks, per sketch cell:
    exact hits, 1-cell misses (incl. diagonal), 2-cell misses, and a wrap-around trap."""
    target = np.full((1, N), _cell(1, 1), np.int32)
    attended = np.full((1, N), _cell(1, 1), np.int32)
    attended[0, 1] = _cell(0, 0)  # diagonal neighbour: within1
    attended[0, 2] = _cell(1, 2)  # right neighbour: within1
    attended[0, 3] = _cell(1, 3)  # 2 columns away: miss
    attended[0, 4] = _cell(2, 3)  # 2 columns away, 1 row: miss
    # (0, 3) and (1, 0) are neighbours in flat index (3 vs 4) but not on the grid
    target[0, 5], attended[0, 5] = _cell(1, 0), _cell(0, 3)
    valid = np.ones((1, N), np.float32)
    valid[0, 6] = 0.0  # an invalid exact hit must not count ...
    valid[0, 7] = 0.0  # ... nor an invalid miss
    attended[0, 7] = _cell(2, 3)
    return _one_hot_alpha(attended), target, valid


def test_hand_built_attention_counts_exact_and_within_one_cell():
    alpha, target, valid = _case()
    hits = attention_hits(alpha, target, valid, GRID)
    # valid cells: 12 - 2 = 10; exact: cells 0, 8, 9, 10, 11 (cell 6 is invalid) = 5
    assert hits == {"exact": 5, "within1": 7, "valid": 10}
    accuracy = correspondence_accuracy(alpha, target, valid, GRID)
    assert accuracy == {"exact": 0.5, "within1": 0.7, "n": 10}


def test_logits_give_the_same_accuracy_as_softmax():
    alpha, target, valid = _case()
    logits = np.log(alpha) * 3.0 + 7.0  # any increasing map of each row keeps its argmax
    assert correspondence_accuracy(logits, target, valid, GRID) == correspondence_accuracy(
        alpha, target, valid, GRID)


def test_perfect_and_batched_attention():
    rng = np.random.default_rng(0)
    target = rng.integers(0, N, (4, N)).astype(np.int32)
    valid = (rng.random((4, N)) > 0.3).astype(np.float32)
    accuracy = correspondence_accuracy(_one_hot_alpha(target), target, valid, GRID)
    assert accuracy["exact"] == accuracy["within1"] == 1.0
    assert accuracy["n"] == int(valid.sum())


def test_bad_shapes_and_no_valid_cells_raise():
    alpha, target, valid = _case()
    with pytest.raises(ValueError, match=r"\[B, 16, 16\] for a 4x4 grid"):
        attention_hits(alpha, target, valid, (4, 4))
    with pytest.raises(ValueError, match="correspondence"):
        attention_hits(alpha, target[:, :5], valid, GRID)
    with pytest.raises(ValueError, match="no valid"):
        correspondence_accuracy(alpha, target, np.zeros_like(valid), GRID)


class _ScriptedGenerator:
    """Stands in for an SCFTGenerator: returns prepared attention maps in order."""

    stride = 16

    def __init__(self, maps):
        self.maps = list(maps)

    def attention_maps(self, sketch, reference):
        return self.maps.pop(0)


def test_driver_pools_hits_over_batches():
    alpha, target, valid = _case()
    perfect = _one_hot_alpha(target)
    batch = {"sketch": np.zeros((1, 48, 64, 1), np.float32),
             "reference": np.zeros((1, 48, 64, 3), np.float32),
             "correspondence": target, "valid": valid}
    result = evaluate_correspondence(_ScriptedGenerator([alpha, perfect]), [batch, batch])
    assert result == {"exact": 15 / 20, "within1": 17 / 20, "n": 20}


@pytest.mark.multi_backend
def test_driver_runs_a_real_generator():
    generator = build_generator(widths=TINY_WIDTHS)
    rng = np.random.default_rng(0)
    batch = {"sketch": rng.uniform(-1, 1, (2, 32, 48, 1)).astype(np.float32),
             "reference": rng.uniform(-1, 1, (2, 32, 48, 3)).astype(np.float32),
             "correspondence": rng.integers(0, 6, (2, 6)).astype(np.int32),
             "valid": np.ones((2, 6), np.float32)}
    result = evaluate_correspondence(generator, [batch])
    assert result["n"] == 12
    assert 0.0 <= result["exact"] <= result["within1"] <= 1.0
