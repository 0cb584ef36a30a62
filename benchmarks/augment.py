"""Images/s of the full self-supervised example generation (SelfAugment) at 256x256.

    KERAS_BACKEND=tensorflow python benchmarks/augment.py --mode tfdata   # tf.data, all cores
    KERAS_BACKEND=jax python benchmarks/augment.py --mode jit             # one jitted call (CPU or GPU)

Prints images/s, the batch size, the device and the number of CPU cores.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def bench_tfdata(images: np.ndarray, batch: int, batches: int) -> float:
    import tensorflow as tf

    from keras_scft.augment.example import SelfAugment

    dataset = (tf.data.Dataset.from_tensor_slices(images).repeat().batch(batch, drop_remainder=True)
               .map(SelfAugment(seed=0), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
    iterator = iter(dataset)
    for _ in range(3):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - start)


def bench_jit(images: np.ndarray, batch: int, batches: int) -> float:
    import jax
    import keras

    from keras_scft.augment.example import SelfAugment

    layer = SelfAugment(seed=0)
    data = jax.device_put(images[:batch])
    state = [v.value for v in layer.non_trainable_variables]

    @jax.jit
    def step(state, x):
        out, state = layer.stateless_call([], state, x)
        return out, state

    out, state = step(state, data)
    jax.block_until_ready(out)
    start = time.perf_counter()
    for _ in range(batches):
        out, state = step(state, data)
    jax.block_until_ready(out)
    del keras
    return batches * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("tfdata", "jit"), required=True)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    images = np.random.default_rng(0).integers(0, 256, (256, args.size, args.size, 3), dtype=np.uint8)
    rate = (bench_tfdata if args.mode == "tfdata" else bench_jit)(images, args.batch, args.batches)
    import keras

    device = "cpu"
    if args.mode == "jit":
        import jax

        device = str(jax.devices()[0].device_kind)
    print(f"mode={args.mode} backend={keras.backend.backend()} device={device} cores={os.cpu_count()} "
          f"size={args.size} batch={args.batch}: {rate:.1f} img/s")


if __name__ == "__main__":
    main()
