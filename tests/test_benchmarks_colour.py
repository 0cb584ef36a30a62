"""benchmarks/colour_cast.py: colour statistics of saved colorizations (docs/results.md)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from colour_cast import colour_stats, image_means, reference_transfer  # noqa: E402


def test_colour_stats_count_only_coloured_pixels():
    images = np.full((1, 4, 4, 3), 255, np.uint8)  # paper
    images[0, 0] = 0  # a row of line pixels
    images[0, 1, :2] = (100, 200, 50)  # two green pixels
    stats = colour_stats(images)
    assert stats["mean_rgb"] == pytest.approx([100, 200, 50])
    assert stats["green_excess"] == pytest.approx(125.0)
    assert stats["coloured_share"] == pytest.approx(2 / 16)


def test_colour_stats_of_only_paper_and_lines_is_an_error():
    images = np.zeros((1, 2, 2, 3), np.uint8)
    images[0, 0] = 255
    with pytest.raises(ValueError, match="no coloured pixels"):
        colour_stats(images)


def test_reference_transfer_recovers_slope_and_offset():
    rng = np.random.default_rng(0)
    truths = rng.uniform(50, 200, (20, 3))
    references = rng.uniform(50, 200, (20, 3))
    outputs = truths + 0.5 * (references - truths) + np.array([-20.0, 0.0, 5.0])
    outputs[3] = np.nan  # an output without coloured pixels is left out
    fit = reference_transfer(outputs, references, truths)
    assert fit["slope"] == pytest.approx([0.5, 0.5, 0.5])
    assert fit["intercept"] == pytest.approx([-20.0, 0.0, 5.0])


def test_image_means_use_coloured_pixels_and_give_nan_without_any():
    images = np.full((2, 2, 2, 3), 255, np.uint8)
    images[0, 0, 0] = (100, 150, 50)
    means = image_means(images)
    np.testing.assert_allclose(means[0], [100, 150, 50])
    assert np.isnan(means[1]).all()
