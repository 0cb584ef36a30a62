"""From a dataset source to training batches: in-memory arrays, a step-indexed batch
sequence (exact resume), and the tf.data pipeline that runs the augmentation as graph ops.

Batches are a deterministic function of (seed, global step): after a restart at step s the
sequence continues exactly where it stopped. So are the augmentation draws of the tf.data
pipeline (:func:`augmentation_params`).

Several workers (data-parallel replicas or processes) each feed a *shard* of every global
batch: shard i of n is rows ``[i * B / n, (i + 1) * B / n)`` of the global batch, images and
augmentation draws alike. Each worker reads and augments only its own rows, and the
examples of a step are the same whatever the number of workers.
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


def shard_rows(batch_size: int, shard: int, num_shards: int) -> slice:
    """Rows of a global batch of ``batch_size`` that shard ``shard`` of ``num_shards`` feeds."""
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} of {num_shards} does not exist")
    if batch_size % num_shards:
        raise ValueError(f"a global batch of {batch_size} does not split evenly into {num_shards} shards")
    size = batch_size // num_shards
    return slice(shard * size, (shard + 1) * size)


class ImageBatches(keras.utils.PyDataset):
    """Raw uint8 batches ``{"image", "sketch"?}`` from in-memory arrays, indexed by global step.

    Keras "epochs" are ``steps_per_epoch`` steps; batch i of the e-th epoch served by this
    object is global step ``start_step + e * steps_per_epoch + i``. ``batch_size`` is the
    global batch; with ``num_shards > 1`` the object serves only shard ``shard`` of it
    (``batch_size / num_shards`` rows, see :func:`shard_rows`).
    """

    def __init__(self, arrays: dict[str, np.ndarray], batch_size: int, steps_per_epoch: int,
                 seed: int = 0, start_step: int = 0, shard: int = 0, num_shards: int = 1):
        super().__init__(workers=1, use_multiprocessing=False, max_queue_size=8)
        self.arrays = arrays
        self.batch_size = int(batch_size)
        self.steps_per_epoch = int(steps_per_epoch)
        self.seed = int(seed)
        self.start_step = int(start_step)
        self.shard, self.num_shards = int(shard), int(num_shards)
        self.rows = shard_rows(self.batch_size, self.shard, self.num_shards)
        self.epochs_served = 0
        self.num_examples = len(next(iter(arrays.values())))

    def __len__(self) -> int:
        return self.steps_per_epoch

    @property
    def num_batches(self) -> int:
        return self.steps_per_epoch

    @property
    def shard_size(self) -> int:
        return self.rows.stop - self.rows.start

    def step_batch(self, step: int) -> dict[str, np.ndarray]:
        """This shard's rows of the batch of global step ``step``."""
        index = batch_indices(self.num_examples, self.batch_size, step, self.seed)[self.rows]
        return {key: value[index] for key, value in self.arrays.items()}

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self.step_batch(self.start_step + self.epochs_served * self.steps_per_epoch + index)

    def on_epoch_end(self) -> None:
        self.epochs_served += 1


def split_example(example: dict[str, Any]) -> tuple[dict, dict]:
    """Flat example dict -> ``({sketch, reference}, {target, correspondence, valid, negative})``."""
    return ({k: example[k] for k in EXAMPLE_INPUTS}, {k: example[k] for k in EXAMPLE_TARGETS})


_PARAMS_STREAM = 1  # keeps the augmentation draws apart from the data order's (seed, pass) streams


def augmentation_params(augment, batch_size: int, height: int, width: int, seed: int, step: int) -> dict:
    """Every random draw of the augmentation of global step ``step``, for the whole global batch.

    A function of (seed, step) only, drawn with numpy (see ``SelfAugment.sample_params``), so
    the tf.data pipeline is deterministic (no shared seed state among parallel ``map``
    calls), resumes exactly at any step, and a worker that slices out its rows gets the same
    examples as a single process. Returns nested numpy arrays with ``batch_size`` rows.
    """
    rng = np.random.default_rng([seed, step, _PARAMS_STREAM])
    params = augment.sample_params(batch_size, height, width, rng=rng)
    return keras.tree.map_structure(lambda v: np.asarray(keras.ops.convert_to_numpy(v)), params)


def augmented_tf_dataset(batches, augment, num_steps: int):
    """tf.data pipeline: step-indexed raw batches -> ``augment`` as graph ops -> (x, y).

    ``batches`` is an :class:`ImageBatches` or a list of them, one per replica this pipeline
    feeds (shards of the same global batch); each step yields one batch per entry, in order.
    ``augment`` (a :class:`keras_scft.augment.SelfAugment`) is applied inside ``Dataset.map``
    on the CPU cores, in parallel with the training step, with the draws of
    :func:`augmentation_params` (sliced to each shard's rows). TensorFlow backend only.
    """
    import tensorflow as tf

    shards = list(batches) if isinstance(batches, (list, tuple)) else [batches]
    first = shards[0]
    height, width = first.arrays["image"].shape[1:3]

    def params_of(step):
        return augmentation_params(augment, first.batch_size, height, width, first.seed, step)

    def element(shard, step, params):
        return shard.step_batch(step), keras.tree.map_structure(lambda v: v[shard.rows], params)

    def generate():
        for step in range(first.start_step, first.start_step + num_steps):
            params = params_of(step)
            for shard in shards:
                yield element(shard, step, params)

    def spec(value):
        return tf.TensorSpec((first.shard_size, *value.shape[1:]), tf.as_dtype(value.dtype))

    signature = keras.tree.map_structure(spec, element(first, first.start_step, params_of(first.start_step)))
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)

    def build(raw, params):
        return split_example(augment.apply(raw["image"], params, raw.get("sketch"), uint8_input=True))

    dataset = dataset.map(build, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def shard_of_batches(arrays, batch_size: int, shard: int, num_shards: int):
    """The rows of ``arrays`` (a nested structure of arrays) that shard ``shard`` feeds when
    every ``batch_size`` consecutive rows form one global batch: its local batch k is rows
    ``[k * B + shard * b, k * B + (shard + 1) * b)`` with ``b = B / num_shards``. A final
    incomplete global batch is left out."""
    rows = shard_rows(batch_size, shard, num_shards)
    count = len(keras.tree.flatten(arrays)[0]) // batch_size * batch_size
    index = np.concatenate([np.arange(start + rows.start, start + rows.stop)
                            for start in range(0, count, batch_size)] or [np.zeros(0, np.int64)])
    return keras.tree.map_structure(lambda v: v[index], arrays)


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
