"""From a dataset source to training batches: in-memory arrays, a step-indexed batch
sequence (exact resume), and the tf.data pipeline that runs the augmentation as graph ops.

Batches are a deterministic function of (seed, global step): after a restart at step s the
sequence continues exactly where it stopped.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from tqdm import tqdm

from keras_scft.data.sources import ImageSource

EXAMPLE_INPUTS = ("sketch", "reference")
EXAMPLE_TARGETS = ("target", "correspondence", "valid", "negative")


def load_arrays(source: ImageSource, image_size: int, limit: int | None = None,
                progress: bool = True) -> dict[str, np.ndarray]:
    """Read a source into memory at a fixed square size.

    Returns:
        ``{"image": uint8 [N, S, S, 3], "sketch": uint8 [N, S, S, 1] (if the source has line
        art)}``; unreadable files are skipped (see the source's ``skipped``).
    """
    images, sketches = [], []
    total = len(source) if limit is None else min(limit, len(source))
    records = source.as_numpy_iterator(image_size)
    for record in tqdm(records, total=total, desc=f"load {total} images", unit="img", disable=not progress):
        images.append(record["image"])
        if "sketch" in record:
            sketches.append(record["sketch"])
        if len(images) == total:
            break
    if not images:
        raise ValueError(f"the dataset has no readable images ({source.skipped} skipped)")
    arrays = {"image": np.stack(images)}
    if sketches:
        arrays["sketch"] = np.stack(sketches)
    return arrays


def batch_indices(num_examples: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Example indices of global step ``step``: passes over the data in seeded permutations.

    Sample position p = step * batch_size + k belongs to pass p // N, where it takes element
    p % N of that pass's permutation (seeded by (seed, pass)). int64 [batch_size].
    """
    positions = step * batch_size + np.arange(batch_size)
    passes, offsets = np.divmod(positions, num_examples)
    out = np.empty(batch_size, np.int64)
    for p in np.unique(passes):
        permutation = np.random.default_rng([seed, int(p)]).permutation(num_examples)
        mask = passes == p
        out[mask] = permutation[offsets[mask]]
    return out


class ImageBatches(keras.utils.PyDataset):
    """Raw uint8 batches ``{"image", "sketch"?}`` from in-memory arrays, indexed by global step.

    Keras "epochs" are ``steps_per_epoch`` steps; batch i of the e-th epoch served by this
    object is global step ``start_step + e * steps_per_epoch + i``.
    """

    def __init__(self, arrays: dict[str, np.ndarray], batch_size: int, steps_per_epoch: int,
                 seed: int = 0, start_step: int = 0):
        super().__init__(workers=1, use_multiprocessing=False, max_queue_size=8)
        self.arrays = arrays
        self.batch_size = int(batch_size)
        self.steps_per_epoch = int(steps_per_epoch)
        self.seed = int(seed)
        self.start_step = int(start_step)
        self.epochs_served = 0
        self.num_examples = len(next(iter(arrays.values())))

    def __len__(self) -> int:
        return self.steps_per_epoch

    @property
    def num_batches(self) -> int:
        return self.steps_per_epoch

    def step_batch(self, step: int) -> dict[str, np.ndarray]:
        """The batch of global step ``step``."""
        index = batch_indices(self.num_examples, self.batch_size, step, self.seed)
        return {key: value[index] for key, value in self.arrays.items()}

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self.step_batch(self.start_step + self.epochs_served * self.steps_per_epoch + index)

    def on_epoch_end(self) -> None:
        self.epochs_served += 1


def split_example(example: dict[str, Any]) -> tuple[dict, dict]:
    """Flat example dict -> ``({sketch, reference}, {target, correspondence, valid, negative})``."""
    return ({k: example[k] for k in EXAMPLE_INPUTS}, {k: example[k] for k in EXAMPLE_TARGETS})


def augmented_tf_dataset(batches: ImageBatches, augment, num_steps: int):
    """tf.data pipeline: step-indexed raw batches -> ``augment`` as graph ops -> (x, y).

    ``augment`` (a :class:`keras_scft.augment.SelfAugment`) runs inside ``Dataset.map`` on
    the CPU cores, in parallel with the training step. TensorFlow only.
    """
    import tensorflow as tf

    first = batches.step_batch(batches.start_step)
    signature = {k: tf.TensorSpec((batches.batch_size, *v.shape[1:]), tf.uint8) for k, v in first.items()}

    def generate():
        for step in range(batches.start_step, batches.start_step + num_steps):
            yield batches.step_batch(step)

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    dataset = dataset.map(lambda batch: split_example(augment(batch)), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def validation_examples(arrays: dict[str, np.ndarray], augment, count: int, seed: int = 0
                        ) -> tuple[dict, dict]:
    """A fixed validation set built with numpy-drawn augmentation (same on every backend).

    Returns ``(x, y)`` numpy dicts of the first ``count`` examples (see :func:`split_example`).
    """
    count = min(count, len(arrays["image"]))
    rng = np.random.default_rng(seed)
    parts = []
    for start in range(0, count, 32):
        stop = min(start + 32, count)
        sketch = arrays["sketch"][start:stop] if "sketch" in arrays else None
        parts.append(augment.example_from_numpy(arrays["image"][start:stop], rng, sketch))
    example = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return split_example(example)


def steps_for(num_examples: int, batch_size: int, steps: int | None, epochs: float | None) -> int:
    """Training steps from a step count or a number of passes over the data."""
    if steps is not None:
        return int(steps)
    return max(1, math.ceil(epochs * num_examples / batch_size))
