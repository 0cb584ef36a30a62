"""Where the time of one training step goes: a JAX profiler trace, summarised.

    KERAS_BACKEND=jax python benchmarks/profile_step.py --size 256 --batch 32 --out profile.json

Compiles the same step as benchmarks/train_step.py, runs a few warm-up steps, traces
``--steps`` steps with ``jax.profiler.trace`` (Perfetto JSON) and prints, for the device's
kernel streams (GPU) or the XLA op threads (CPU): the top kernels by total time, and the time
per category (convolution, matmul, fusion, layout copies, other). ``--out`` writes the same
summary as JSON; ``--trace-dir`` keeps the raw trace (open it in ui.perfetto.dev).

Kernels are also attributed to the model part that issued them (``by_scope``: the Keras layer
path in the HLO op's ``op_name`` metadata, e.g. ``generator/sketch_encoder``, with
``backward`` for ops of the gradient computation), so the time splits into generator,
discriminator, VGG, augmentation and optimizer. ``--hlo-out`` keeps the optimized HLO text
(gzip) to look fusions up by name.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import re
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CATEGORIES = (  # first match wins; names are XLA op names on CPU, CUDA kernel names on GPU
    ("convolution", re.compile(r"conv|cudnn|implicit_gemm|wgrad|dgrad|fprop|xmma_fprop", re.I)),
    ("matmul", re.compile(r"gemm|matmul|dot|cublas|nvjet|sm90_xmma", re.I)),
    ("layout copy", re.compile(r"transpose|copy|memcpy|memset", re.I)),
    ("fusion", re.compile(r"fusion|loop_|input_|reduce|triton", re.I)),
)


def category(name: str) -> str:
    for label, pattern in CATEGORIES:
        if pattern.search(name):
            return label
    return "other"


_HLO_LINE = re.compile(r'^\s+(?:ROOT\s+)?%?([\w.\-]+) = ')
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_CALLS = re.compile(r'calls=%?([\w.\-]+)')


def hlo_op_names(hlo_text: str) -> dict[str, str]:
    """Map each HLO instruction name (``loop_add_fusion.12``) to its ``op_name`` metadata, also
    under the name of the GPU kernel XLA emits for it (``loop_add_fusion_12``).

    A fusion without metadata of its own gets the ``op_name`` of the model part most of its
    fused instructions come from (an optimizer update fused with the gradient's transpose is
    ``adam``), so kernels of fusions are attributed too.
    """
    names, fused, calls = {}, collections.defaultdict(list), {}
    computation = None
    for line in hlo_text.splitlines():
        if line and not line[0].isspace():
            computation = line.split(" ", 1)[0].lstrip("%") if line.rstrip().endswith("{") else None
            continue
        m = _HLO_LINE.match(line)
        if not m:
            continue
        op_name, called = _OP_NAME.search(line), _CALLS.search(line)
        if op_name:
            names[m.group(1)] = op_name.group(1)
            if computation:
                fused[computation].append(op_name.group(1))
        elif called:
            calls[m.group(1)] = called.group(1)
    for name, computation in calls.items():
        parts = collections.Counter(scope(op) for op in fused.get(computation, ()))
        if parts:
            part = parts.most_common(1)[0][0]
            names[name] = next(op for op in fused[computation] if scope(op) == part)
    return {**names, **{name.replace(".", "_"): op for name, op in names.items()}}


def scope(op_name: str, depth: int = 2) -> str:
    """Coarse model part of an ``op_name``: the first ``depth`` name scopes (Keras layer names)
    under the jitted function, prefixed ``backward:`` for ops of a gradient (``transpose(...)``).

    ``jit(train_step)/transpose(jvp(sketch_encoder))/pool1/reduce_window_sum`` ->
    ``backward: sketch_encoder/pool1``.
    """
    backward = "transpose(" in op_name
    parts = []
    for part in op_name.split("/")[:-1]:  # the last part is the primitive
        if re.match(r"^p?jit\(", part):
            continue  # a jitted function (train_step, leaky_relu, ...), not a layer
        part = re.sub(r"^(?:\w+\()+|\)+$", "", part)  # jvp(...), transpose(...), vmap(...)
        if part:
            parts.append(part)
    return ("backward: " if backward else "") + ("/".join(parts[:depth]) or "(top level)")


def read_trace(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return json.load(f)["traceEvents"]


def summarize_trace(events: list[dict], steps: int, top: int = 25, op_names: dict[str, str] | None = None) -> dict:
    """Group complete events (``ph == "X"``) by process/thread, pick the device kernel threads
    (GPU streams if any, else XLA CPU worker threads) and rank kernels there.

    Returns ``{"threads": [...], "selected": [...], "ms_per_step": float, "categories":
    {name: ms per step}, "top": [{"name", "ms_per_step", "calls_per_step", "share"}],
    "by_scope": {scope: ms per step}}`` (``by_scope`` only with ``op_names``; a kernel's HLO op
    is its event's ``hlo_op`` argument on GPU, its name on CPU).
    """
    processes, threads = {}, {}
    for e in events:
        if e.get("ph") == "M" and e.get("name") == "process_name":
            processes[e["pid"]] = e.get("args", {}).get("name", str(e["pid"]))
        elif e.get("ph") == "M" and e.get("name") == "thread_name":
            threads[(e["pid"], e.get("tid"))] = e.get("args", {}).get("name", str(e.get("tid")))
    per_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            per_thread[(e["pid"], e.get("tid"))].append(e)
    labels = {key: f"{processes.get(key[0], key[0])} / {threads.get(key, key[1])}" for key in per_thread}
    busy = sorted(((sum(e["dur"] for e in evs), key) for key, evs in per_thread.items()), reverse=True)
    gpu = [key for _, key in busy if "gpu" in labels[key].lower() and "stream" in labels[key].lower()]
    if gpu:
        selected = gpu
    else:  # CPU: XLA's Eigen worker threads run the ops (nested in ThunkExecutor wrapper events)
        selected = [key for _, key in busy if "xlaeigen" in labels[key].lower()]
    kernels = collections.defaultdict(lambda: [0.0, 0])
    scopes = collections.defaultdict(float)
    for key in selected:
        for e in per_thread[key]:
            if "ThunkExecutor" in e.get("name", ""):
                continue
            kernels[e.get("name", "?")][0] += e["dur"]
            kernels[e.get("name", "?")][1] += 1
            if op_names is not None:
                # inside a CUDA graph the event's hlo_op is the command buffer: use the kernel name
                op = next((op for op in (e.get("args", {}).get("hlo_op"), e.get("name")) if op in op_names), None)
                scopes[scope(op_names[op]) if op else "(unattributed)"] += e["dur"] / 1e3 / steps
    total_us = sum(v[0] for v in kernels.values()) or 1.0
    categories = collections.defaultdict(float)
    for name, (dur, _) in kernels.items():
        categories[category(name)] += dur / 1e3 / steps
    ranked = sorted(kernels.items(), key=lambda kv: -kv[1][0])[:top]
    return {
        "threads": [{"thread": labels[key], "ms": dur / 1e3} for dur, key in busy[:20]],
        "selected": [labels[key] for key in selected],
        "ms_per_step": total_us / 1e3 / steps,
        "categories": dict(sorted(categories.items(), key=lambda kv: -kv[1])),
        "top": [{"name": name, "category": category(name), "ms_per_step": dur / 1e3 / steps,
                 "calls_per_step": calls / steps, "share": dur / total_us} for name, (dur, calls) in ranked],
        "by_scope": dict(sorted(scopes.items(), key=lambda kv: -kv[1])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--steps", type=int, default=5, help="traced steps")
    parser.add_argument("--augment-in-step", action="store_true", help="raw images, augmentation on the device")
    parser.add_argument("--inference", action="store_true", help="profile the generator's forward pass instead")
    parser.add_argument("--perceptual", default="random", help="VGG weights (speed does not depend on them)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--trace-dir", default=None, help="keep the raw trace here (default: a temporary folder)")
    parser.add_argument("--out", default=None, help="write the summary here as JSON")
    parser.add_argument("--hlo-out", default=None, help="write the optimized HLO text here (gzip)")
    args = parser.parse_args()

    import jax

    from train_step import device_name, prepare_train, run_steps

    if args.inference:
        from inference import _calls, prepare_inference

        run = prepare_inference(args.size, args.batch, args.precision)
        _calls(run["compiled"], run["args"], 3)  # warm-up

        def steps(n):
            return _calls(run["compiled"], run["args"], n)
    else:
        run = prepare_train(args.size, args.batch, args.precision, args.augment_in_step, args.perceptual)
        _, _, state = run_steps(run["compiled"], run["state"], run["data"], 3)

        def steps(n):
            nonlocal state
            seconds, _, state = run_steps(run["compiled"], state, run["data"], n)
            return seconds

    with tempfile.TemporaryDirectory() as scratch:
        trace_dir = Path(args.trace_dir or scratch)
        with jax.profiler.trace(str(trace_dir), create_perfetto_trace=True):
            seconds = steps(args.steps)
        traces = sorted(trace_dir.rglob("*.trace.json.gz"), key=lambda p: p.stat().st_mtime)
        if not traces:
            sys.exit(f"no Perfetto trace was written under {trace_dir}")
        hlo_text = run["compiled"].as_text()
        summary = summarize_trace(read_trace(traces[-1]), args.steps, args.top, hlo_op_names(hlo_text))
    if args.hlo_out:
        with gzip.open(args.hlo_out, "wt") as f:
            f.write(hlo_text)
    summary.update(device=device_name(), size=args.size, batch=args.batch, precision=args.precision,
                   kind="inference" if args.inference else "train", augment_in_step=args.augment_in_step,
                   wall_ms_per_step=seconds * 1e3, img_per_s=args.batch / seconds, compile_s=run["compile_s"])
    print(f"device {summary['device']}, batch {args.batch}, {args.precision}: {seconds * 1e3:.1f} ms/step wall "
          f"(traced), kernels {summary['ms_per_step']:.1f} ms/step on {len(summary['selected'])} thread(s)")
    for name, ms in summary["categories"].items():
        print(f"  {name:12} {ms:8.2f} ms/step")
    print("  by model part:")
    for name, ms in list(summary["by_scope"].items())[:args.top]:
        print(f"  {ms:8.2f} ms/step  {name}")
    for k in summary["top"]:
        print(f"  {k['share']:6.1%} {k['ms_per_step']:8.2f} ms x{k['calls_per_step']:<5g} {k['category']:12} {k['name'][:90]}")
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
