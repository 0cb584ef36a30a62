"""Run callbacks: the sample grid's background writes (on their own), and the batch-end hooks in a
Keras fit (off the training thread on JAX, the non-finite stop from there)."""

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


def _probe_fit(callbacks, x):
    """Fit a one-layer model for one epoch of len(x) // 2 batches with ``callbacks``."""
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros_like(x), batch_size=2, epochs=1, callbacks=callbacks, verbose=0, shuffle=False)
    return model


@pytest.mark.multi_backend
def test_batch_end_hooks_run_off_the_training_thread_on_jax(tmp_path):
    """Keras runs batch-end hooks on a worker thread (so the training thread does not wait for
    each execution) only if every callback is declared async-safe: the run's are."""
    import threading

    import keras

    from keras_scft.training.tensorboard import ScalarLog

    threads = []

    class Probe(callbacks.RunCallback):
        def on_train_batch_end(self, batch, logs=None):
            threads.append(threading.current_thread())

    run_callbacks = [callbacks.StopOnNonFinite(4), callbacks.Throughput(2, 4), Probe(4), ScalarLog(tmp_path)]
    _probe_fit(run_callbacks, np.ones((8, 1), "float32"))
    assert len(threads) == 4
    off_thread = [thread is not threading.main_thread() for thread in threads]
    # TensorFlow's backend is not thread-safe for Keras: its hooks stay on the training thread
    assert off_thread == [keras.backend.backend() == "jax"] * 4

    threads.clear()  # a multi-process run's guard waits for each execution: every hook back on the training thread
    _probe_fit([callbacks.StopOnNonFinite(4, asynchronous=False), Probe(4)], np.ones((8, 1), "float32"))
    assert threads == [threading.main_thread()] * 4


@pytest.mark.multi_backend
def test_a_non_finite_loss_found_on_the_callback_thread_names_its_step():
    guard = callbacks.StopOnNonFinite(steps_per_epoch=10)
    x = np.ones((20, 1), "float32")
    x[10:] = np.nan  # batches 5.. (steps 6..) have a NaN loss
    model = _probe_fit([guard], x)  # on JAX, stopping through `self.model` failed here ("Array has been deleted")
    assert model.stop_training
    assert guard.failure.startswith("non-finite loss at step 6: loss = nan")


def test_the_earliest_non_finite_step_is_recorded_when_checks_finish_out_of_order():
    guard = callbacks.StopOnNonFinite(steps_per_epoch=10)
    guard.set_model(types.SimpleNamespace(stop_training=False))
    guard.on_epoch_begin(0)
    guard.on_train_batch_end(7, {"loss": float("inf")})  # a later execution's check ends first
    guard.on_train_batch_end(5, {"loss": float("nan")})
    guard.on_train_batch_end(8, {"loss": float("nan")})
    assert guard.failure.startswith("non-finite loss at step 6: loss = nan")
