"""Attention-correspondence accuracy: does SCFT attend where the TPS warp moved the content?

On self-augmented pairs (``SelfAugment``: the reference is a TPS warp of the colour-shifted
image) the ground truth is known: ``correspondence[i]`` is the reference cell showing sketch
cell i, where ``valid[i]`` is 1. For each valid sketch cell the attention row's argmax (the
reference cell it attends to most) is a hit

* ``exact``:   when it is that cell;
* ``within1``: when it is at most one cell away from it (Chebyshev distance on the grid,
  i.e. one of the 3 x 3 cells around it).

Accuracy is hits / valid cells, pooled over all images. Chance level is about 1 / N
(``exact``) and 9 / N (``within1``) for N grid cells.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tqdm.auto import tqdm

from keras_scft.layers.generator import SCFTGenerator


def attention_hits(alpha, correspondence, valid, grid: tuple[int, int]) -> dict[str, int]:
    """Hit counts of one batch.

    Args:
        alpha: float [B, N, N] attention (or its logits: only the row argmax is used); rows are
            sketch cells, columns reference cells, both row-major on ``grid``.
        correspondence: int [B, N] ground-truth reference cell of each sketch cell.
        valid: [B, N], nonzero where ``correspondence`` exists.
        grid: (height, width) of the cell grid, height * width = N.

    Returns:
        ``{"exact": int, "within1": int, "valid": int}``: counts over the batch.
    """
    alpha = np.asarray(alpha)
    correspondence, valid = np.asarray(correspondence), np.asarray(valid) != 0
    height, width = grid
    if alpha.ndim != 3 or alpha.shape[1:] != (height * width,) * 2:
        raise ValueError(f"alpha must be [B, {height * width}, {height * width}] for a "
                         f"{height}x{width} grid, got shape {alpha.shape}")
    if correspondence.shape != alpha.shape[:2] or valid.shape != alpha.shape[:2]:
        raise ValueError(f"correspondence {correspondence.shape} and valid {valid.shape} must be "
                         f"{alpha.shape[:2]} to match alpha")
    attended = np.argmax(alpha, axis=-1)
    distance = np.maximum(np.abs(attended // width - correspondence // width),
                          np.abs(attended % width - correspondence % width))
    return {"exact": int(np.sum((distance == 0) & valid)),
            "within1": int(np.sum((distance <= 1) & valid)),
            "valid": int(np.sum(valid))}


def correspondence_accuracy(alpha, correspondence, valid, grid: tuple[int, int]) -> dict:
    """Fraction of valid sketch cells whose attention argmax hits its target.

    Arguments as for :func:`attention_hits`. Returns ``{"exact": float in [0, 1],
    "within1": float in [0, 1], "n": number of valid cells}``; raises if there are none.
    """
    return _accuracy(attention_hits(alpha, correspondence, valid, grid))


def evaluate_correspondence(generator: SCFTGenerator, batches: Iterable[dict], total: int | None = None,
                            progress: bool = False) -> dict:
    """Correspondence accuracy of a generator's SCFT attention over a set of examples.

    Args:
        generator: the model under test.
        batches: dicts with ``sketch`` float [B, H, W, 1] and ``reference`` float [B, H, W, 3]
            in [-1, 1], ``correspondence`` int [B, N] and ``valid`` [B, N] (as built by
            ``SelfAugment`` with ``feature_stride=generator.stride``).
        total: number of batches, for the progress bar.
        progress: show a tqdm bar.

    Returns:
        As :func:`correspondence_accuracy`, hits pooled over all batches.
    """
    counts = {"exact": 0, "within1": 0, "valid": 0}
    for batch in tqdm(batches, desc="correspondence", unit="batch", total=total, disable=not progress):
        height, width = batch["sketch"].shape[1:3]
        grid = (height // generator.stride, width // generator.stride)
        alpha = generator.attention_maps(batch["sketch"], batch["reference"])
        for key, value in attention_hits(alpha, batch["correspondence"], batch["valid"], grid).items():
            counts[key] += value
    return _accuracy(counts)


def _accuracy(counts: dict[str, int]) -> dict:
    if counts["valid"] == 0:
        raise ValueError("no valid correspondences to score (valid is 0 everywhere)")
    return {"exact": counts["exact"] / counts["valid"], "within1": counts["within1"] / counts["valid"],
            "n": counts["valid"]}
