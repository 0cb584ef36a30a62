"""Generator inference under variants of its memory-bound parts, JAX backend (experiments).

    KERAS_BACKEND=jax python benchmarks/inference_variants.py base --out iv.jsonl
    KERAS_BACKEND=jax python benchmarks/inference_variants.py twopass+bf16w --out iv.jsonl

Each run builds the default generator with seed 0 (same weights in every process), times the
jitted batch-64 forward as benchmarks/inference.py does (three rounds of ``--steps`` calls)
and prints one JSON line: img/s per round, batch-1 latency, compile time and the largest
difference of its images from those of the last ``base`` run (``--reference``, written by
``base``). A variant is ``base`` or ``+``-joined changes, patched into this process only:

* ``twopass``: instance-norm statistics as ``keras.ops.moments`` takes them (the mean, then
  the mean squared deviation from it: two reads of each map), the layer's form before
  :func:`keras_scft.layers.instance_norm.one_pass_moments`;
* ``bf16w``: kernels (every variable of 2+ dimensions) passed in bfloat16, cast once outside
  the jitted function instead of in it (mixed precision casts them to bfloat16 anyway);
* ``pool2``: the encoders' block average pooling as two means (columns, then rows);
* ``poolrw``: the same pooling as ``keras.ops.average_pool`` (a reduce_window);
* ``poolrows``: the same pooling as two means, over each block's rows first (reducing [B, H/s, s,
  W*C] over s: the kept minor axis is a whole image row, W*C values), then over its columns;
* ``widestats``: the instance-norm sums over rows of 128 values: each [B, H, W, C] map read as
  [B, H*W / k, k*C] with k*C = 128 (a column reduction whose kept minor axis spans 256 bytes
  of bfloat16 instead of C*2), summed over the middle axis, then over the k (same sums, another
  float order);
* ``widenorm``: the whole instance norm (statistics and the scale-and-shift, so in training
  also the backward pass's sums over each map) on that [B, H*W / k, k*C] view, the per-channel
  scale and shift tiled k times.

Differences from ``base`` of ~0.1 are the spread of a changed float order under bfloat16
(autotuning may pick other convolution algorithms for another program), not a changed function.
"""

from __future__ import annotations

import argparse
import io
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CHANGES = ("twopass", "bf16w", "pool2", "poolrw", "poolrows", "widestats", "widenorm")


def parse_variant(variant: str) -> set[str]:
    """``"base"`` -> set(); ``"twopass+bf16w"`` -> {"twopass", "bf16w"}; unknown parts raise."""
    if variant == "base":
        return set()
    parts = set(variant.split("+"))
    unknown = sorted(parts - set(CHANGES))
    if unknown:
        raise ValueError(f"unknown variant part(s) {unknown}; allowed: base, or +-joined {', '.join(CHANGES)}")
    return parts


def patches(parts: set[str]) -> list[tuple[object, str, object]]:
    """``(owner, attribute, replacement)`` for the changes in ``parts`` (see the module doc);
    :func:`run` sets them in this process."""
    from keras import ops

    from keras_scft.layers import instance_norm, pooling

    def two_pass_moments(x, axes=(1, 2)):
        return ops.moments(ops.cast(x, "float32"), axes=axes, keepdims=True)

    def row_factor(pixels, channels):
        """k: the largest power of two <= 128 / channels that divides the pixel count."""
        k = max(1, 128 // channels)
        while pixels % k:
            k //= 2
        return k

    def wide_view(x):
        """[B, H, W, C] -> ([B, H*W / k, k*C] (same memory order), k, the per-channel spatial
        mean of such a view: [B, H*W / k, k*C] -> [B, 1, C])."""
        _, height, width, channels = x.shape
        k = row_factor(height * width, channels)

        def channel_mean(y):
            y = ops.sum(y, axis=1)
            return ops.reshape(ops.sum(ops.reshape(y, (-1, k, channels)), axis=1) / (height * width), (-1, 1, channels))

        return ops.reshape(x, (-1, height * width // k, k * channels)), k, channel_mean

    def wide_shifted_moments(rows, k, channel_mean):
        """one_pass_moments on the wide view: ([B, 1, C] mean, [B, 1, C] variance)."""
        channels = rows.shape[-1] // k
        shift = ops.stop_gradient(rows[:, :1, :channels])
        d = rows - ops.tile(shift, (1, 1, k))
        mean_d = channel_mean(d)
        return shift + mean_d, ops.maximum(channel_mean(ops.square(d)) - ops.square(mean_d), 0.0)

    def wide_moments(x, axes=(1, 2)):
        mean, variance = wide_shifted_moments(*wide_view(ops.cast(x, "float32")))
        return ops.expand_dims(mean, 1), ops.expand_dims(variance, 1)

    def wide_norm_call(self, inputs):
        if None in inputs.shape[1:]:  # symbolic build with open sizes
            return original_norm_call(self, inputs)
        rows, k, channel_mean = wide_view(ops.cast(inputs, "float32"))
        mean, variance = wide_shifted_moments(rows, k, channel_mean)
        scale = ops.rsqrt(variance + self.epsilon) * ops.cast(self.gamma, "float32")
        shift = ops.cast(self.beta, "float32") - mean * scale
        y = rows * ops.tile(scale, (1, 1, k)) + ops.tile(shift, (1, 1, k))
        return ops.cast(ops.reshape(y, (-1, *inputs.shape[1:])), self.compute_dtype)

    def two_means(self, x):
        return ops.mean(ops.mean(pooling._blocks(x, self.size), axis=4), axis=2)

    def reduce_window(self, x):
        return ops.average_pool(x, self.size, self.size, padding="valid")

    def rows_first(self, x):
        return ops.mean(ops.mean(pooling._blocks(x, self.size), axis=2), axis=3)

    chosen = []
    original_norm_call = instance_norm.InstanceNormalization.call
    statistics = parts & {"twopass", "widestats", "widenorm"}
    if len(statistics) > 1:
        raise ValueError(f"{', '.join(sorted(statistics))} all replace the instance-norm statistics; pick one")
    if "twopass" in parts:
        chosen.append((instance_norm, "one_pass_moments", two_pass_moments))
    if "widestats" in parts:
        chosen.append((instance_norm, "one_pass_moments", wide_moments))
    if "widenorm" in parts:
        chosen.append((instance_norm.InstanceNormalization, "call", wide_norm_call))
    pools = {"pool2": two_means, "poolrw": reduce_window, "poolrows": rows_first}
    pooling_parts = parts & set(pools)
    if len(pooling_parts) > 1:
        raise ValueError(f"{', '.join(sorted(pooling_parts))} all replace the block pooling; pick one")
    for part in pooling_parts:
        chosen.append((pooling.BlockAveragePooling2D, "call", pools[part]))
    return chosen


def apply_patches(parts: set[str]) -> None:
    """Set :func:`patches` of ``parts`` in this process (for the rest of its life)."""
    for owner, attribute, replacement in patches(parts):
        setattr(owner, attribute, replacement)


def cast_kernels(variables: list) -> list:
    """Every variable of 2+ dimensions (conv and dense kernels) as bfloat16; others as given."""
    from keras import ops

    return [ops.cast(v, "bfloat16") if len(v.shape) >= 2 else v for v in variables]


def run(variant: str, size: int, batch: int, steps: int, reference: str) -> dict:
    """Time ``variant`` (see the module doc) on the seeded default generator; ``base`` writes
    its images to ``reference`` (a .npy path), the others report their largest difference."""
    import jax
    import keras
    import numpy as np
    from inference import _timed, prepare_inference

    from keras_scft.data.io import write_atomic

    parts = parse_variant(variant)
    apply_patches(parts)
    keras.utils.set_random_seed(0)
    prepared = prepare_inference(size, batch, "mixed_bfloat16")
    tv, ntv, inputs = prepared["args"]
    compiled = prepared["compiled"]
    if "bf16w" in parts:
        tv = cast_kernels(tv)
        compiled = jax.jit(prepared["forward"]).lower(tv, ntv, inputs).compile()
    args = (tv, ntv, inputs)
    seconds = [_timed(compiled, args, steps) for _ in range(3)]
    images = np.asarray(compiled(*args)).astype("float32")
    if variant == "base":  # written whole, then renamed: a reader never sees part of it
        buffer = io.BytesIO()
        np.save(buffer, images)
        write_atomic(reference, buffer.getvalue())
    difference = float(np.abs(images - np.load(reference)).max()) if os.path.exists(reference) else None
    single = jax.device_put({k: v[:1] for k, v in inputs.items()})
    latency = _timed(jax.jit(prepared["forward"]).lower(tv, ntv, single).compile(), (tv, ntv, single), steps)
    return {"variant": variant, "size": size, "batch": batch, "img_per_s": [batch / s for s in seconds],
            "step_ms": [s * 1e3 for s in seconds], "batch1_latency_ms": latency * 1e3,
            "compile_s": prepared["compile_s"], "max_abs_diff_vs_base": difference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant", help="base, or +-joined: " + ", ".join(CHANGES))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--reference", default="/tmp/inference_variants_base.npy",
                        help="images of the base run (written by base, compared by the others)")
    parser.add_argument("--out", default=None, help="append the JSON line here")
    args = parser.parse_args()
    try:
        parse_variant(args.variant)
    except ValueError as error:
        parser.error(str(error))
    from train_step import device_name, emit_result

    result = run(args.variant, args.size, args.batch, args.steps, args.reference)
    result["device"] = device_name()
    emit_result(result, args.out)


if __name__ == "__main__":
    main()
