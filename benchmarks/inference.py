"""Generator inference throughput (batch 64 by default) and batch-1 latency, JAX backend.

    KERAS_BACKEND=jax python benchmarks/inference.py --size 256 --batch 64 --precision mixed_bfloat16

Times the jitted generator forward (sketch + reference in [-1, 1], colorized image out) on
device-resident inputs, as a serving loop that keeps its batches on the accelerator would.
Prints one JSON line: img/s, ms per batch, batch-1 latency, compile time, analytic GFLOP per
image and MFU against --peak-tflops (790: the bf16 dense peak measured on the device's H100),
peak device memory, and the device.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _calls(compiled, args, steps: int) -> float:
    """Seconds per call of ``compiled(*args)`` over ``steps`` calls (no warm-up)."""
    import jax

    t0 = time.perf_counter()
    for _ in range(steps):
        out = compiled(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / steps


def _timed(compiled, args, steps: int) -> float:
    """Seconds per call of ``compiled(*args)`` over ``steps`` calls, after 3 warm-up calls."""
    _calls(compiled, args, 3)
    return _calls(compiled, args, steps)


def prepare_inference(size: int, batch: int, precision: str) -> dict:
    """Build the default generator, a random batch on the device and the compiled forward.

    Returns ``compiled`` (tv, ntv, inputs) -> image, ``args``, ``forward`` (uncompiled, for
    other batch sizes), ``generator``, the analytic ``flops`` per image and ``compile_s``.
    """
    import jax
    import keras
    import numpy as np

    from flops import forward_flops
    from keras_scft.layers.generator import build_generator

    keras.config.set_dtype_policy(precision)
    generator = build_generator()
    rng = np.random.default_rng(0)
    inputs = jax.device_put({"sketch": rng.uniform(-1, 1, (batch, size, size, 1)).astype("float32"),
                             "reference": rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")})
    tv = [v.value for v in generator.trainable_variables]
    ntv = [v.value for v in generator.non_trainable_variables]

    def forward(tv, ntv, x):
        return generator.stateless_call(tv, ntv, x, training=False)[0]["image"]

    t0 = time.perf_counter()
    compiled = jax.jit(forward).lower(tv, ntv, inputs).compile()
    compile_s = time.perf_counter() - t0
    one = {k: np.zeros((1, size, size, c), "float32") for k, c in (("sketch", 1), ("reference", 3))}
    return {"compiled": compiled, "args": (tv, ntv, inputs), "forward": forward, "generator": generator,
            "flops": forward_flops(generator, one), "compile_s": compile_s}


def run_inference(size: int, batch: int, precision: str, steps: int) -> dict:
    import jax

    from train_step import peak_memory

    run = prepare_inference(size, batch, precision)
    seconds = _timed(run["compiled"], run["args"], steps)
    tv, ntv, inputs = run["args"]
    single = jax.device_put({k: v[:1] for k, v in inputs.items()})
    latency = _timed(jax.jit(run["forward"]).lower(tv, ntv, single).compile(), (tv, ntv, single), steps)
    flops = run["flops"]
    return {"kind": "inference", "size": size, "batch": batch, "precision": precision,
            "img_per_s": batch / seconds, "step_ms": seconds * 1e3, "batch1_latency_ms": latency * 1e3,
            "compile_s": run["compile_s"], "analytic_gflop_per_img": flops / 1e9,
            "achieved_tflops": flops * batch / seconds / 1e12, "peak_mem_gb": (peak_memory() or 0) / 1e9,
            "xla_flags": os.environ.get("XLA_FLAGS", "")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--peak-tflops", type=float, default=790.0)
    parser.add_argument("--out", default=None, help="append the JSON line here")
    args = parser.parse_args()
    from train_step import device_name, emit_result

    result = run_inference(args.size, args.batch, args.precision, args.steps)
    result.update(device=device_name(), mfu=result["achieved_tflops"] / args.peak_tflops)
    emit_result(result, args.out)


if __name__ == "__main__":
    main()
