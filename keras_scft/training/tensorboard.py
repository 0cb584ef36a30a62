"""TensorBoard scalars of a run, written without TensorFlow.

Keras' TensorBoard callback writes through ``tf.summary``, so a JAX run that logs to
TensorBoard imports TensorFlow (seconds at start-up) or, where it is not installed, logs
nothing. :class:`ScalarLog` writes the same files with the ``tensorboard`` package's own
protos and record writer: per epoch, every metric ``m`` as the scalar ``epoch_m`` into
``<folder>/train`` and every ``val_m`` as ``epoch_m`` into ``<folder>/validation``, at step =
the (global) epoch, the layout of Keras' callback with ``update_freq="epoch"``.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path

import keras
import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.scalar import metadata
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

_FILE_NUMBERS = itertools.count()  # orders the files one process opens within a second


class EventFile:
    """One TensorBoard event file in ``folder`` (created on the first write), appended to.

    Args:
        folder: the run's TensorBoard subfolder (``train`` or ``validation``).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._records: RecordWriter | None = None

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        now = time.time()
        name = f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}.{next(_FILE_NUMBERS)}.v2"
        self._records = RecordWriter(open(self.folder / name, "ab"))
        self._write(event_pb2.Event(wall_time=now, file_version="brain.Event:2"))

    def _write(self, event: event_pb2.Event) -> None:
        self._records.write(event.SerializeToString())

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Write ``values`` (tag -> number) as scalar summaries at ``step`` and flush."""
        if self._records is None:
            self._open()
        summary = summary_pb2.Summary(value=[
            summary_pb2.Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(np.float32(value)),
                                      metadata=metadata.create_summary_metadata(display_name=tag, description=""))
            for tag, value in values.items()])
        self._write(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
        self._records.flush()

    def close(self) -> None:
        if self._records is not None:
            self._records.close()
            self._records = None


class ScalarLog(keras.callbacks.Callback):
    """Writes each epoch's logs to TensorBoard (see the module docstring); None values (a
    metric not computed this epoch, e.g. validation between its intervals) are skipped.
    Async-safe (:class:`~keras_scft.training.callbacks.RunCallback`): no batch-end hook.

    Args:
        folder: the run's ``logs`` folder.
    """

    async_safe = True

    def __init__(self, folder: str | Path):
        super().__init__()
        self.train_file = EventFile(Path(folder) / "train")
        self.validation_file = EventFile(Path(folder) / "validation")

    def on_epoch_end(self, epoch, logs=None):
        numbers = {k: v for k, v in ((k, _number(v)) for k, v in (logs or {}).items()) if v is not None}
        train = {f"epoch_{k}": v for k, v in numbers.items() if not k.startswith("val_")}
        validation = {f"epoch_{k[4:]}": v for k, v in numbers.items() if k.startswith("val_")}
        if train:
            self.train_file.scalars(train, epoch)
        if validation:
            self.validation_file.scalars(validation, epoch)

    def on_train_end(self, logs=None):
        self.train_file.close()
        self.validation_file.close()


def _number(value) -> float | None:
    """``value`` as a float, or None where it is None or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
