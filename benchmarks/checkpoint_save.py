"""What one training checkpoint costs: size and seconds of ``save_checkpoint`` for a recipe's model.

    KERAS_BACKEND=jax python benchmarks/checkpoint_save.py recipes/openmoji.json [--repeats 3] [--dir /tmp/ckpt]
        [--duplicate-slots] [--profile serialize.prof] [--out results.json]

Builds the recipe's ColorizerModel (as tools/train.py does, without training: the sizes
and the write path do not depend on the weights' values) and times the two parts of a
checkpoint ``--repeats`` times: ``serialize_s`` (the archive built in memory: training waits
for this) and ``write_s`` (partial file, fsync, rename: training's checkpointer does this on
a background thread); ``save_s`` is their sum, a synchronous save. ``--duplicate-slots``
saves in the format before :class:`keras_scft.optimizers.GANOptimizer` (every Adam slot
also under ``optimizer/``), for the comparison. ``host_copy_s``: one batched copy of every
variable to host memory (``keras.ops.convert_to_numpy``), the part of serializing that needs
the device. Then three checkpoints through a :class:`BackgroundWriter` (as training's
checkpointer writes them, each after the previous write ended): ``twin_save_blocking_s``,
how long each ``save`` blocked the caller (the first also compiles the JAX state copy and
takes the model's config, its thread builds the twin; later ones only copy the state), and
``twin_total_s``, the third from ``save`` until it is on disk. ``--profile``
runs one more serialization under cProfile, saves the statistics (read with
``python -m pstats``) and prints the 25 most expensive calls. Prints one JSON line with the
device.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from train_step import device_name, emit_result  # (also makes JAX the default backend, as in the other benchmarks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    parser.add_argument("--duplicate-slots", action="store_true", help="the earlier format, for comparison")
    parser.add_argument("--profile", default=None, help="cProfile one more serialization into this file")
    parser.add_argument("--out", default=None, help="append the JSON line here")
    args = parser.parse_args()

    import keras

    from keras_scft.optimizers import GANOptimizer
    from keras_scft.recipes import load_recipe
    from keras_scft.training.checkpoints import (BackgroundWriter, checkpoint_path, serialize_model, state_variables,
                                                 write_checkpoint)
    from keras_scft.training.run import build_model

    recipe = load_recipe(args.recipe, ["train.steps=1"])
    if recipe["train"]["mixed_precision"]:
        keras.config.set_dtype_policy("mixed_bfloat16")
    t0 = time.perf_counter()
    model = build_model(recipe, augment_in_step=True)
    build_s = time.perf_counter() - t0
    if args.duplicate_slots:
        GANOptimizer.save_own_variables = keras.optimizers.MultiOptimizer.save_own_variables
    folder = args.dir or tempfile.mkdtemp(prefix="ckpt_bench_")
    serialize_s, write_s = [], []
    for step in range(1, args.repeats + 1):
        t0 = time.perf_counter()
        archive = serialize_model(model)
        t1 = time.perf_counter()
        path = write_checkpoint(archive, folder, step, keep=1)
        serialize_s.append(t1 - t0)
        write_s.append(time.perf_counter() - t1)
    host_copy_s = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        keras.tree.map_structure(keras.ops.convert_to_numpy, [v.value for v in state_variables(model)])
        host_copy_s.append(time.perf_counter() - t0)
    size_mb = os.path.getsize(path) / 1e6
    writer, twin_save_blocking_s = BackgroundWriter(), []
    for step in range(args.repeats + 1, args.repeats + 4):
        writer.wait()  # in training the previous write ended long before
        t0 = time.perf_counter()
        writer.save(model, folder, step, keep=1)
        twin_save_blocking_s.append(time.perf_counter() - t0)
    writer.wait()
    twin_total_s = time.perf_counter() - t0
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(serialize_model, model)
        profiler.dump_stats(args.profile)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    result = {"recipe": args.recipe, "backend": keras.backend.backend(), "device": device_name(),
              "duplicate_slots": args.duplicate_slots, "size_mb": size_mb,
              "serialize_s": serialize_s, "write_s": write_s,
              "save_s": [a + b for a, b in zip(serialize_s, write_s)], "host_copy_s": host_copy_s,
              "twin_save_blocking_s": twin_save_blocking_s, "twin_total_s": twin_total_s, "build_s": build_s}
    os.remove(checkpoint_path(folder, step))  # keep=1 removed the others
    emit_result(result, args.out)


if __name__ == "__main__":
    main()
