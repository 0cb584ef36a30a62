"""What one training checkpoint costs: size and seconds of ``save_checkpoint`` for a recipe's model.

    KERAS_BACKEND=jax python benchmarks/checkpoint_save.py recipes/openmoji.json [--repeats 3] [--dir /tmp/ckpt]
        [--duplicate-slots] [--out results.json]

Builds the recipe's ColorizerModel (as tools/train.py does, without training: the sizes
and the write path do not depend on the weights' values) and times
:func:`keras_scft.training.checkpoints.save_checkpoint` (write to a partial file, fsync,
rename) ``--repeats`` times. ``--duplicate-slots`` saves in the format before
:class:`keras_scft.optimizers.GANOptimizer` (every Adam slot also under ``optimizer/``), for
the comparison. Prints one JSON line with the device.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from train_step import device_name  # (also makes JAX the default backend, as in the other benchmarks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    parser.add_argument("--duplicate-slots", action="store_true", help="the earlier format, for comparison")
    parser.add_argument("--out", default=None, help="append the JSON line here")
    args = parser.parse_args()

    import keras

    from keras_scft.optimizers import GANOptimizer
    from keras_scft.recipes import load_recipe
    from keras_scft.training.checkpoints import save_checkpoint
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
    seconds = []
    for step in range(1, args.repeats + 1):
        t0 = time.perf_counter()
        path = save_checkpoint(model, folder, step, keep=1)
        seconds.append(time.perf_counter() - t0)
    result = {"recipe": args.recipe, "backend": keras.backend.backend(), "device": device_name(),
              "duplicate_slots": args.duplicate_slots, "size_mb": os.path.getsize(path) / 1e6,
              "save_s": seconds, "build_s": build_s}
    os.remove(path)
    line = json.dumps(result)
    print(line, flush=True)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
