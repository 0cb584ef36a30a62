"""Keras callbacks of a training run: checkpoints, sample grids, non-finite-loss stop, speed.

A Keras "epoch" of a run is ``steps_per_epoch`` steps (the recipe's log interval). The JAX
trainer writes the trained state back into the model's variables at epoch ends, so
checkpoints and grids are made there; ``step`` is the global step at that point.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import keras

from keras_scft.grids import image_grid, save_png
from keras_scft.training.checkpoints import BackgroundWriter


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


class RunCallback(keras.callbacks.Callback):
    """Knows the global step: Keras epochs are numbered globally (``initial_epoch`` on
    resume), so epoch e ends at step ``(e + 1) * steps_per_epoch``.

    ``async_safe``: Keras may then run the batch-end hooks on its callback threads (JAX
    backend), where turning the step's logs into numbers waits for that step, and the
    training thread dispatches the next execution at once; all hooks end before
    ``on_epoch_end``. If one callback with a batch-end hook is not so declared (none of Keras'
    own is), Keras calls them all on the training thread: a wait on the device per
    execution, the device idle while the host fetches and dispatches the next one.
    """

    async_safe = True

    def __init__(self, steps_per_epoch: int):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch

    def step_at_epoch_end(self, epoch: int) -> int:
        return (epoch + 1) * self.steps_per_epoch


class StopOnNonFinite(RunCallback):
    """Stops training at the first NaN/inf metric and records the step and the loss term.

    Checks the logs after every execution (``steps_per_execution`` steps) and at epoch
    ends; the run then raises :class:`NonFiniteLossError` and saves no further checkpoint.
    ``asynchronous``: on JAX the per-execution checks run on Keras' callback threads
    (possibly several at once, out of order), so training stops a few executions after the
    bad one; the earliest bad step checked is the one recorded, and the epoch end, which
    waits for every check, still comes before any checkpoint. Pass False in a multi-process
    run: every process must stop after the same execution (the next one is a collective
    program), so there the check waits for each execution.
    """

    def __init__(self, steps_per_epoch: int, asynchronous: bool = True):
        super().__init__(steps_per_epoch)
        self.async_safe = asynchronous
        self.failure: str | None = None
        self._failed_at: int | None = None
        self._lock = threading.Lock()
        self._epoch = 0
        self._trainer = None

    def set_model(self, model):
        super().set_model(model)
        # Stopping goes through this reference, not ``self.model``: on JAX that getter writes
        # the training state back into the variables, which from Keras' callback thread races
        # the training loop (it then fails on buffers the next step has taken over).
        self._trainer = model

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _check(self, logs, step: int):
        for name, value in (logs or {}).items():
            if not math.isfinite(float(value)):
                with self._lock:
                    if self._failed_at is None or step < self._failed_at:
                        self._failed_at = step
                        self.failure = (f"non-finite loss at step {step}: {name} = {float(value)}; "
                                        "training stopped, the last checkpoint before it is kept")
                self._trainer.stop_training = True
                return

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, self._epoch * self.steps_per_epoch + batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        if self.failure is None:
            self._check({k: v for k, v in (logs or {}).items() if not k.startswith("val_")},
                        self.step_at_epoch_end(epoch))


class Checkpointer(RunCallback):
    """Saves the full training state every ``interval`` steps and at the end of training.

    At the epoch end training waits only for the state to be copied (see
    :class:`~keras_scft.training.checkpoints.BackgroundWriter`); serializing it and writing
    it to disk run on a background thread while training goes on. The last write is waited
    for when training ends. ``seconds``: the time training waited for checkpoints in all.
    """

    def __init__(self, folder: Path, interval: int, keep: int, steps_per_epoch: int, total_steps: int,
                 guard: StopOnNonFinite):
        super().__init__(steps_per_epoch)
        self.folder, self.interval, self.keep, self.total_steps = Path(folder), interval, keep, total_steps
        self.guard = guard
        self.last_saved: int | None = None
        self.seconds = 0.0
        self._writer = BackgroundWriter()

    def on_epoch_end(self, epoch, logs=None):
        step = self.step_at_epoch_end(epoch)
        if self.guard.failure is None and (step % self.interval == 0 or step >= self.total_steps):
            start = time.perf_counter()
            self._writer.save(self.model, self.folder, step, self.keep, last=step >= self.total_steps)
            self.seconds += time.perf_counter() - start
            self.last_saved = step

    def on_train_end(self, logs=None):
        start = time.perf_counter()
        self._writer.wait()
        self.seconds += time.perf_counter() - start


class SampleGrid(RunCallback):
    """Every ``interval`` steps, writes ``samples/step-<step>.png``: rows of
    sketch | reference | output | target for a fixed validation batch.

    Training waits only for the generator's images (``seconds``: that wait in all;
    ``first_seconds``: the first grid's, which includes building the generator's program); a
    background thread assembles and encodes the PNG (~0.2 s for 8 rows at 256 px) and
    writes it atomically, one grid at a time. A failed write is raised by the next grid or
    the end of training, which waits for the last one.
    """

    def __init__(self, folder: Path, examples: tuple[dict, dict], interval: int, steps_per_epoch: int,
                 count: int = 8):
        super().__init__(steps_per_epoch)
        self.folder, self.interval = Path(folder), interval
        x, y = examples
        self.inputs = {k: v[:count] for k, v in x.items()}
        self.target = y["target"][:count]
        self.seconds = 0.0
        self.first_seconds: float | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sample_grid")
        self._last: Future | None = None  # the newest grid's write

    def generate(self):
        """The generator's images for the fixed inputs, float [count, H, W, 3] in [-1, 1]."""
        return self.model.generator.predict_on_batch(self.inputs)["image"]

    def _write(self, path: Path, outputs) -> None:
        save_png(path, image_grid([self.inputs["sketch"], self.inputs["reference"], outputs, self.target]))

    def on_epoch_end(self, epoch, logs=None):
        step = self.step_at_epoch_end(epoch)
        if self.interval and step % self.interval == 0:
            start = time.perf_counter()
            outputs = keras.ops.convert_to_numpy(self.generate())
            self._wait()
            self._last = self._writer.submit(self._write, self.folder / f"step-{step:08d}.png", outputs)
            waited = time.perf_counter() - start
            self.seconds += waited
            if self.first_seconds is None:
                self.first_seconds = waited

    def on_train_end(self, logs=None):
        start = time.perf_counter()
        self._wait()
        self.seconds += time.perf_counter() - start

    def _wait(self) -> None:
        """Wait for the previous grid's write (long done: grids are an interval apart); raise its error."""
        last, self._last = self._last, None
        if last is not None:
            last.result()


class Throughput(RunCallback):
    """Adds ``img_per_s`` (training images per second over the epoch) to the epoch logs, and
    records ``first_step_seconds``: from ``started`` (a ``time.perf_counter()`` value, e.g.
    when the run began) to the end of the first training call (data loading, model building
    and compilation included: the time a user waits before training runs), and
    ``validation_seconds``: the time spent in validation (included in ``img_per_s``'s epochs)."""

    def __init__(self, batch_size: int, steps_per_epoch: int, started: float | None = None):
        super().__init__(steps_per_epoch)
        self.batch_size = batch_size
        self.history: list[float] = []
        self.started = time.perf_counter() if started is None else started
        self.first_step_seconds: float | None = None
        self.validation_seconds = 0.0

    def on_test_begin(self, logs=None):
        self._test_start = time.perf_counter()

    def on_test_end(self, logs=None):
        self.validation_seconds += time.perf_counter() - self._test_start

    def on_train_batch_end(self, batch, logs=None):
        if self.first_step_seconds is None:
            self.first_step_seconds = time.perf_counter() - self.started

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        rate = self.batch_size * self.steps_per_epoch / (time.perf_counter() - self._start)
        self.history.append(rate)
        if logs is not None:
            logs["img_per_s"] = rate
