"""Throughput of the full ColorizerModel training step (and, via benchmarks/inference.py,
of generator inference), JAX backend.

Prints one JSON line per configuration and a table, with the device it ran on. Each
configuration runs in its own process (clean memory statistics and compile timing).

    KERAS_BACKEND=jax python benchmarks/train_step.py --size 256 --batch-sizes 16,32 \
        --precisions mixed_bfloat16,float32 --out results.jsonl

``--variant`` times the step under a variant of benchmarks/inference_variants.py (any of its
parts but bf16w, which is not a patch), e.g. ``--variant widenorm+poolrows``.

FLOPs are analytic (benchmarks/flops.py); MFU is against --peak-tflops (790: the bf16 dense
peak measured on the device's H100/H200 with an 8192^3 matmul).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def device_name() -> str:
    import jax

    d = jax.devices()[0]
    return f"{d.platform}:{getattr(d, 'device_kind', d)} x{jax.device_count()}"


def emit_result(result: dict, out: str | None) -> None:
    """Print ``result`` as one JSON line and append it to the file ``out`` (if given)."""
    line = json.dumps(result)
    print(line, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


def peak_memory() -> int | None:
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def _state(model):
    return ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
            [v.value for v in model.optimizer.variables], [v.value for v in model.metrics_variables])


def build_train(size: int, batch: int, precision: str, augment_in_step: bool, perceptual: str) -> dict:
    """Build ColorizerModel and one batch on the device; the step jitted (buffer-donating), not lowered.

    Returns ``model``, ``step`` (state, data) -> (logs, state), ``state``, ``data`` and
    ``build_s`` (model, optimizer slots, data on the device).
    """
    import jax
    import keras
    import numpy as np

    from keras_scft.augment.example import SelfAugment
    from keras_scft.model import ColorizerModel

    t0 = time.perf_counter()
    keras.config.set_dtype_policy(precision)
    model = ColorizerModel(perceptual=perceptual, augment=SelfAugment(seed=0) if augment_in_step else None)
    model.compile()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    if augment_in_step:
        data = {"image": jax.device_put(images)}
    else:
        example = SelfAugment(seed=0)(images)
        data = ({"sketch": example["sketch"], "reference": example["reference"]},
                {k: example[k] for k in ("target", "correspondence", "valid", "negative")})
        data = jax.device_put(data)
    state = jax.tree_util.tree_map(jax.numpy.copy, _state(model))
    jax.block_until_ready(state)
    return {"model": model, "step": jax.jit(model.train_step, donate_argnums=0), "state": state, "data": data,
            "build_s": time.perf_counter() - t0}


def prepare_train(size: int, batch: int, precision: str, augment_in_step: bool, perceptual: str) -> dict:
    """Build ColorizerModel, one batch on the device and the compiled, buffer-donating step.

    Returns ``compiled`` (state, data) -> (logs, state), ``state``, ``data``, the analytic
    ``flops`` per image, XLA's own count ``xla_flops`` per step, ``build_s`` (model, optimizer
    slots, data on the device), ``compile_s`` (tracing, lowering and XLA compilation) and
    ``lower_s`` (tracing and lowering alone). The three times are also printed to stderr as
    soon as they are known.
    """
    from flops import train_step_flops

    built = build_train(size, batch, precision, augment_in_step, perceptual)
    state, data, build_s = built["state"], built["data"], built["build_s"]
    flops = train_step_flops(built["model"], size)
    t0 = time.perf_counter()
    lowered = built["step"].lower(state, data)
    lower_s = time.perf_counter() - t0
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    xla_flags = os.environ.get("XLA_FLAGS", "")
    print(f"built in {build_s:.1f} s, lowered in {lower_s:.1f} s, compiled in {compile_s:.1f} s "
          f"(XLA_FLAGS={xla_flags!r})", file=sys.stderr, flush=True)
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return {"compiled": compiled, "state": state, "data": data, "flops": flops["total"], "compile_s": compile_s,
            "lower_s": lower_s, "build_s": build_s, "xla_flags": xla_flags,
            "xla_flops": float(cost.get("flops", 0.0)) if cost else 0.0}


def run_steps(compiled, state, data, steps: int):
    """Run ``steps`` steps; returns (seconds per step, last logs, state)."""
    import jax

    logs = None
    t0 = time.perf_counter()
    for _ in range(steps):
        logs, state = compiled(state, data)
    jax.block_until_ready(state)
    return (time.perf_counter() - t0) / max(steps, 1), logs, state


def run_train(size: int, batch: int, precision: str, steps: int, augment_in_step: bool, perceptual: str) -> dict:
    run = prepare_train(size, batch, precision, augment_in_step, perceptual)
    _, _, state = run_steps(run["compiled"], run["state"], run["data"], 3)  # warm-up
    seconds, logs, _ = run_steps(run["compiled"], state, run["data"], steps)
    return {
        "kind": "train", "size": size, "batch": batch, "precision": precision,
        "augment_in_step": augment_in_step, "step_ms": seconds * 1e3, "img_per_s": batch / seconds,
        "compile_s": run["compile_s"], "lower_s": run["lower_s"], "build_s": run["build_s"], "xla_flags": run["xla_flags"],
        "analytic_gflop_per_img": run["flops"] / 1e9,
        "xla_gflop_per_step": run["xla_flops"] / 1e9,
        "achieved_tflops": run["flops"] * batch / seconds / 1e12,
        "peak_mem_gb": (peak_memory() or 0) / 1e9,
        "losses": {k: float(v) for k, v in logs.items()},
    }


def main() -> None:
    from inference import run_inference

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-sizes", default="16,32")
    parser.add_argument("--precisions", default="mixed_bfloat16,float32")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--inference-batch", type=int, default=64, help="0 skips the inference benchmark")
    parser.add_argument("--augment-in-step", action="store_true", help="also time raw images augmented on device")
    parser.add_argument("--perceptual", default="random", help="VGG weights (speed does not depend on them)")
    parser.add_argument("--peak-tflops", type=float, default=790.0)
    parser.add_argument("--out", default=None, help="append JSON lines here")
    parser.add_argument("--variant", default="base",
                        help="base, or +-joined patched parts of benchmarks/inference_variants.py (not bf16w)")
    parser.add_argument("--single", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from inference_variants import apply_patches, parse_variant

    try:
        parts = parse_variant(args.variant)
    except ValueError as error:
        parser.error(str(error))
    if "bf16w" in parts:
        parser.error("--variant: bf16w is inference_variants.py's own (kernels passed cast), not a patch")

    if args.single:  # child process: one configuration
        apply_patches(parts)
        spec = json.loads(args.single)
        kind = spec.pop("kind")
        result = run_train(**spec) if kind == "train" else run_inference(**spec)
        result["device"] = device_name()
        result["variant"] = args.variant
        result["mfu"] = result["achieved_tflops"] / args.peak_tflops
        print("RESULT " + json.dumps(result), flush=True)
        return

    specs = []
    for precision in args.precisions.split(","):
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            for aug in ([False, True] if args.augment_in_step else [False]):
                specs.append({"kind": "train", "size": args.size, "batch": batch, "precision": precision,
                              "steps": args.steps, "augment_in_step": aug, "perceptual": args.perceptual})
    if args.inference_batch:
        specs.append({"kind": "inference", "size": args.size, "batch": args.inference_batch,
                      "precision": args.precisions.split(",")[0], "steps": args.steps})
    results = []
    for spec in specs:
        proc = subprocess.run([sys.executable, __file__, "--single", json.dumps(spec), "--variant", args.variant,
                               "--peak-tflops", str(args.peak_tflops)], capture_output=True, text=True)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(f"FAILED {spec}: {proc.stderr[-3000:]}", flush=True)
            continue
        result = json.loads(lines[-1][7:])
        results.append(result)
        emit_result(result, args.out)
    print(f"\ndevice: {results[0]['device'] if results else '?'}")
    print(f"{'kind':9} {'prec':15} {'batch':>5} {'aug':>4} {'img/s':>8} {'ms':>8} {'MFU':>6} {'compile s':>9} {'mem GB':>7}")
    for r in results:
        print(f"{r['kind']:9} {r['precision']:15} {r['batch']:5d} {str(r.get('augment_in_step', '-'))[:4]:>4} "
              f"{r['img_per_s']:8.1f} {r['step_ms']:8.1f} {r['mfu']:6.1%} {r['compile_s']:9.1f} {r['peak_mem_gb']:7.1f}")


if __name__ == "__main__":
    main()
