"""Data-parallel scaling of the training step over the GPUs of one host (JAX DataParallel).

    KERAS_BACKEND=jax python benchmarks/scaling.py --devices 1,2 --per-device-batch 16 \
        --out scaling.jsonl

For each device count N (each in its own process): ColorizerModel with all five losses and
the augmentation inside the step, ``keras.distribution.DataParallel`` over the first N
devices, global batch N x ``--per-device-batch``, trained through ``fit`` (steps per
execution ``--steps-per-execution``) on uint8 images from host memory, the path
``tools/train.py`` takes on JAX. img/s comes from the wall time between the ends of the
executions after ``--warmup`` of them; the scaling efficiency is img/s(N) / (N x img/s(1)).

Then the equality check for every N > 1 (float32): one step on N devices and one step on one
device with the same global batch and initial weights; prints the largest weight difference
(relative to the largest weight move) and both runs' losses.

On CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` gives two host devices (with
``--size 32 --widths 8,8,16,16,16,16,32,32,32,32 --residual-blocks 1`` it runs in a few
minutes).
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


def _model(spec: dict):
    from keras_scft.augment.example import SelfAugment
    from keras_scft.model import ColorizerModel

    generator = {"widths": spec["widths"], "residual_blocks": spec["residual_blocks"]} if spec["widths"] else None
    model = ColorizerModel(generator=generator, perceptual=spec["perceptual"], augment=SelfAugment(seed=0))
    model.compile(steps_per_execution=spec.get("steps_per_execution", 1))
    return model


def _images(count: int, size: int):
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def _devices(n: int):
    import jax

    devices = jax.devices()
    if n > len(devices):
        raise SystemExit(f"--devices asks for {n} devices, this machine has {len(devices)} ({devices[0].platform})")
    return devices[:n]


def _distribute(n: int) -> None:
    import keras

    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=_devices(n)))


def run_throughput(spec: dict) -> dict:
    import keras

    n, batch, k = spec["devices"], spec["devices"] * spec["per_device_batch"], spec["steps_per_execution"]
    keras.config.set_dtype_policy(spec["precision"])
    _distribute(n)
    model = _model(spec)
    pool = _images(4 * batch, spec["size"])
    ends: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, step, logs=None):
            ends.append(time.perf_counter())

    def batches():
        i = 0
        while True:
            yield ({"image": pool[(i % 4) * batch:(i % 4 + 1) * batch]},)
            i += 1

    calls = spec["warmup"] + spec["calls"]
    t0 = time.perf_counter()
    history = model.fit(batches(), steps_per_epoch=calls * k, epochs=1, verbose=0, callbacks=[Clock()]).history
    first = ends[0] - t0
    seconds = (ends[-1] - ends[spec["warmup"] - 1]) / (spec["calls"] * k)
    return {"devices": n, "global_batch": batch, "img_per_s": batch / seconds, "step_ms": seconds * 1e3,
            "first_call_s": first, "losses": {key: float(v[-1]) for key, v in history.items()}}


def run_equality(spec: dict) -> dict:
    import keras
    import numpy as np

    n, batch = spec["devices"], spec["devices"] * spec["per_device_batch"]
    images = _images(batch, spec["size"])
    keras.utils.set_random_seed(0)
    single = _model(spec)  # no distribution: one device
    initial = single.get_weights()
    logs_single = single.train_on_batch({"image": images}, return_dict=True)
    _distribute(n)
    multi = _model(spec)
    multi.set_weights(initial)
    logs_multi = multi.train_on_batch({"image": images}, return_dict=True)
    worst, moved = 0.0, 0.0
    for start, a, b in zip(initial, single.get_weights(), multi.get_weights()):
        if start.size:
            worst = max(worst, float(np.max(np.abs(np.asarray(a, np.float64) - b))))
            moved = max(moved, float(np.max(np.abs(np.asarray(a, np.float64) - start))))
    return {"devices": n, "global_batch": batch, "max_abs_weight_diff": worst, "max_weight_move": moved,
            "single": {k: float(v) for k, v in logs_single.items()},
            "multi": {k: float(v) for k, v in logs_multi.items()}}


def _child(spec: dict) -> dict | None:
    proc = subprocess.run([sys.executable, __file__, "--single", json.dumps(spec)], capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        print(f"FAILED {spec}: {proc.stderr[-3000:]}", flush=True)
        return None
    return json.loads(lines[-1][7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="1,2", help="device counts to run, e.g. 1,2,4,8")
    parser.add_argument("--per-device-batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--precision", default="mixed_bfloat16", help="of the throughput runs (the check is float32)")
    parser.add_argument("--steps-per-execution", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2, help="executions before timing (compilation)")
    parser.add_argument("--calls", type=int, default=5, help="timed executions")
    parser.add_argument("--widths", default="", help="generator encoder widths (default: the paper's)")
    parser.add_argument("--residual-blocks", type=int, default=4)
    parser.add_argument("--perceptual", default="random", help="VGG weights (speed does not depend on them)")
    parser.add_argument("--no-check", action="store_true", help="skip the N-device vs 1-device equality check")
    parser.add_argument("--out", default=None, help="append JSON lines here")
    parser.add_argument("--single", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.single:  # child process: one measurement
        spec = json.loads(args.single)
        result = run_throughput(spec) if spec["kind"] == "throughput" else run_equality(spec)
        import jax

        device = jax.devices()[0]
        result.update(kind=spec["kind"], device=f"{device.platform}:{getattr(device, 'device_kind', device)}",
                      precision=spec["precision"], size=spec["size"])
        print("RESULT " + json.dumps(result), flush=True)
        return

    base = {"size": args.size, "per_device_batch": args.per_device_batch, "residual_blocks": args.residual_blocks,
            "widths": [int(w) for w in args.widths.split(",")] if args.widths else None,
            "perceptual": args.perceptual}
    counts = [int(n) for n in args.devices.split(",")]
    specs = [{**base, "kind": "throughput", "devices": n, "precision": args.precision,
              "steps_per_execution": args.steps_per_execution, "warmup": args.warmup, "calls": args.calls}
             for n in counts]
    if not args.no_check:
        specs += [{**base, "kind": "equality", "devices": n, "precision": "float32"} for n in counts if n > 1]
    from train_step import emit_result

    results = []
    for spec in specs:
        result = _child(spec)
        if result is None:
            continue
        results.append(result)
        emit_result(result, args.out)
    rates = {r["devices"]: r["img_per_s"] for r in results if r["kind"] == "throughput"}
    print(f"\n{'devices':>7} {'global batch':>12} {'img/s':>9} {'efficiency':>10}")
    for r in (r for r in results if r["kind"] == "throughput"):
        efficiency = r["img_per_s"] / (r["devices"] * rates[1]) if 1 in rates else float("nan")
        print(f"{r['devices']:7d} {r['global_batch']:12d} {r['img_per_s']:9.1f} {efficiency:10.1%}")
    for r in (r for r in results if r["kind"] == "equality"):
        print(f"{r['devices']} devices vs 1, one float32 step: max weight difference {r['max_abs_weight_diff']:.2e} "
              f"(largest move {r['max_weight_move']:.2e}), loss_g {r['multi']['loss_g']:.5f} vs {r['single']['loss_g']:.5f}")


if __name__ == "__main__":
    main()
