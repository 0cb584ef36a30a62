"""Run callbacks tested on their own (no training): the sample grid's background writes."""

import types

import numpy as np
import pytest
from PIL import Image

import keras_scft.training.callbacks as callbacks
from keras_scft.training.callbacks import SampleGrid


def _grid_callback(tmp_path, interval=2):
    x = {"sketch": np.zeros((2, 8, 8, 1), "float32"), "reference": np.ones((2, 8, 8, 3), "float32")}
    y = {"target": np.full((2, 8, 8, 3), -1.0, "float32")}
    grid = SampleGrid(tmp_path / "samples", (x, y), interval=interval, steps_per_epoch=1)
    generator = types.SimpleNamespace(predict_on_batch=lambda inputs: {"image": np.zeros((2, 8, 8, 3), "float32")})
    grid.set_model(types.SimpleNamespace(generator=generator))
    return grid


def test_sample_grid_is_written_in_the_background_and_complete_at_the_end(tmp_path):
    grid = _grid_callback(tmp_path)
    for epoch in range(4):  # steps 1..4: grids at 2 and 4
        grid.on_epoch_end(epoch)
    grid.on_train_end()
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step-00000002.png", "step-00000004.png"]
    image = np.asarray(Image.open(tmp_path / "samples" / "step-00000004.png"))
    assert image.shape == (16, 32, 3)  # 2 rows of sketch | reference | output | target
    np.testing.assert_array_equal(image[:8, 8:16], 255)  # the reference column (ones -> white)
    assert 0 < grid.first_seconds < grid.seconds  # two grids waited for, the first one counted alone


def test_a_failed_grid_write_is_raised_by_the_end_of_training(tmp_path, monkeypatch):
    def full_disk(path, image):
        raise OSError(f"No space left on device: {path}")

    monkeypatch.setattr(callbacks, "save_png", full_disk)
    grid = _grid_callback(tmp_path)
    grid.on_epoch_end(1)
    with pytest.raises(OSError, match="No space left on device: .*step-00000002.png"):
        grid.on_train_end()
