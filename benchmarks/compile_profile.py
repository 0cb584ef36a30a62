"""Where the cold compile of the training step goes: XLA's own trace events, summarised.

Builds the batch-``--batch`` step as benchmarks/train_step.py does, lowers it, then compiles
it under ``jax.profiler.trace`` and ranks the host events XLA records while compiling (HLO
pass pipelines, autotuners, LLVM/PTX code generation) by their own time (``self_ms``: the
event's time less its nested events') and by inclusive time, with the busiest compile
threads. Then times ``--steps`` steps of the compiled program, so a flag that shortens the
compile can be checked for what it costs the step. Prints one JSON line (appended to
``--out``).

    KERAS_BACKEND=jax python benchmarks/compile_profile.py --batch 32 --out compile.jsonl
    XLA_FLAGS=--xla_gpu_enable_llvm_module_compilation_parallelism=true \\
        KERAS_BACKEND=jax python benchmarks/compile_profile.py --batch 32 --out compile.jsonl

No compilation cache is set here, so each process compiles cold (XLA's in-process autotuning
cache is why one process cannot compare two settings): run one process per XLA_FLAGS value.
On a GPU the profiler's device tracing slows XLA's autotuning (it times candidate kernels):
a cold batch-32 compile under it did not finish in 150 s on an H200 (59 s without). Time cold
compiles with benchmarks/train_step.py; trace here the compile with autotuning results given
(``--xla_gpu_load_autotune_results_from=FILE``, written by a cold run with
``--xla_gpu_dump_autotune_results_to=FILE``) to see the rest of it.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def summarize_compile(events: list[dict], top: int = 30) -> dict:
    """Rank complete events (``ph == "X"``) by name over all threads.

    An event's self time is its duration less that of the events nested in it on the same
    thread, so the self times of a thread add up to its busy time. Returns ``{"self":
    [{"name", "self_ms", "inclusive_ms", "calls"}] (top by self time), "inclusive": [...]
    (top by inclusive time), "threads": [{"thread", "busy_ms", "events"}] (busiest first),
    "wall_ms": first start to last end}``.
    """
    threads = {(e["pid"], e.get("tid")): e.get("args", {}).get("name", str(e.get("tid")))
               for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"}
    per_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            per_thread[(e["pid"], e.get("tid"))].append(e)
    own, inclusive, calls = collections.defaultdict(float), collections.defaultdict(float), collections.Counter()
    busy = []
    for key, evs in per_thread.items():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack: list[list] = []  # [end, name, self time so far]
        thread_busy = 0.0

        def close(item):
            own[item[1]] += item[2]

        for e in evs:
            end = e["ts"] + e["dur"]
            while stack and stack[-1][0] <= e["ts"]:
                close(stack.pop())
            if stack:
                stack[-1][2] -= min(e["dur"], stack[-1][0] - e["ts"])
            else:
                thread_busy += e["dur"]
            stack.append([end, e["name"], float(e["dur"])])
            inclusive[e["name"]] += e["dur"]
            calls[e["name"]] += 1
        while stack:
            close(stack.pop())
        busy.append({"thread": threads.get(key, str(key[1])), "busy_ms": thread_busy / 1e3, "events": len(evs)})

    def rows(order):
        return [{"name": name, "self_ms": own[name] / 1e3, "inclusive_ms": inclusive[name] / 1e3,
                 "calls": calls[name]} for name in sorted(inclusive, key=order)[:top]]

    spans = [(e["ts"], e["ts"] + e["dur"]) for evs in per_thread.values() for e in evs]
    return {"self": rows(lambda n: -own[n]), "inclusive": rows(lambda n: -inclusive[n]),
            "threads": sorted(busy, key=lambda t: -t["busy_ms"])[:top],
            "wall_ms": (max(b for _, b in spans) - min(a for a, _ in spans)) / 1e3 if spans else 0.0}


def main() -> None:
    import jax

    from profile_step import read_trace
    from train_step import build_train, device_name, emit_result, run_steps

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--perceptual", default="random", help="VGG weights (compile time does not depend on them)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps after the compile (0: none)")
    parser.add_argument("--top", type=int, default=30, help="rows of each ranking")
    parser.add_argument("--trace-dir", default=None, help="keep the raw trace here (default: a temporary folder)")
    parser.add_argument("--out", default=None, help="append the JSON line here")
    args = parser.parse_args()

    built = build_train(args.size, args.batch, args.precision, False, args.perceptual)
    print(f"built in {built['build_s']:.1f} s", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    lowered = built["step"].lower(built["state"], built["data"])
    lower_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as scratch:
        trace_dir = Path(args.trace_dir or scratch)
        with jax.profiler.trace(str(trace_dir), create_perfetto_trace=True):
            t0 = time.perf_counter()
            compiled = lowered.compile()
            xla_s = time.perf_counter() - t0
        traces = sorted(trace_dir.rglob("*.trace.json.gz"), key=lambda p: p.stat().st_mtime)
        if not traces:
            sys.exit(f"no Perfetto trace was written under {trace_dir}")
        summary = summarize_compile(read_trace(traces[-1]), args.top)
    print(f"lowered in {lower_s:.1f} s, XLA compiled in {xla_s:.1f} s", file=sys.stderr, flush=True)
    result = {"kind": "compile", "size": args.size, "batch": args.batch, "precision": args.precision,
              "build_s": built["build_s"], "lower_s": lower_s, "xla_compile_s": xla_s,
              "xla_flags": os.environ.get("XLA_FLAGS", ""), "device": device_name(), **summary}
    if args.steps:
        _, _, state = run_steps(compiled, built["state"], built["data"], 3)  # warm-up
        seconds, _, _ = run_steps(compiled, state, built["data"], args.steps)
        result.update(step_ms=seconds * 1e3, img_per_s=args.batch / seconds)
    emit_result(result, args.out)
    print(f"\n{result['device']}: XLA compile {xla_s:.1f} s (trace wall {summary['wall_ms'] / 1e3:.1f} s)"
          + (f", step {result['step_ms']:.2f} ms ({result['img_per_s']:.1f} img/s)" if args.steps else ""))
    print(f"{'self s':>8} {'incl s':>8} {'calls':>6}  event")
    for row in summary["self"]:
        print(f"{row['self_ms'] / 1e3:8.2f} {row['inclusive_ms'] / 1e3:8.2f} {row['calls']:6d}  {row['name'][:90]}")


if __name__ == "__main__":
    main()
