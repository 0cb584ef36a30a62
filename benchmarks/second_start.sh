#!/usr/bin/env bash
# How fast a second run of a recipe starts training (issue: "a second run of the same recipe
# starts training in <= 5 s"). Runs tools/train.py three times into fresh run folders with the
# same caches: the first fills the JAX compilation cache and the decoded-image cache (cold
# start), the second is the measured second start, the third repeats it under cProfile
# (OUT/second_start.prof, read with `python -m pstats`). Prints, per run, the process's wall
# time and, from final_metrics.json, seconds_to_fit (train() entered -> fit starts: data,
# model, validation set) and seconds_to_first_step (-> end of the first training call), and
# when the set-up's parts ended (seconds_to_data, _model, _validation_examples), and whether
# the kept train step was loaded during the set-up (train_step_preloaded).
#
#   KERAS_BACKEND=jax bash benchmarks/second_start.sh OUT [RECIPE] [-o field=value ...]
#
# RECIPE defaults to recipes/openmoji.json (run tools/prepare_data.py openmoji first). JAX's
# compile log (JAX_LOG_COMPILES) of each run goes to OUT/run{1,2,3}.log. SECOND_START_RUNS
# (default "1 2 3") picks the runs, e.g. "1 2" without the profiled one. The caches are
# KERAS_SCFT_CACHE's (compilation, exported train steps, decoded images): start with an
# empty one for a cold first run.
set -uo pipefail
OUT=${1:?usage: second_start.sh OUT [RECIPE] [-o field=value ...]}
RECIPE=${2:-recipes/openmoji.json}
shift $(( $# < 2 ? $# : 2 ))
mkdir -p "$OUT"
RUNS=$(mktemp -d)
export PYTHONUNBUFFERED=1 JAX_LOG_COMPILES=1
args=(--quiet -o train.steps=20 -o output.sample_interval=0 -o output.log_interval=10
      -o output.tensorboard=false "$@")
for run in ${SECOND_START_RUNS:-1 2 3}; do
  profile=()
  [ "$run" = 3 ] && profile=(-m cProfile -o "$OUT/second_start.prof")
  start=$(date +%s.%N)
  python3 "${profile[@]}" tools/train.py "$RECIPE" "${args[@]}" -o output.dir="$RUNS/run$run" > "$OUT/run$run.log" 2>&1
  rc=$?
  end=$(date +%s.%N)
  python3 - "$RUNS/run$run/final_metrics.json" "$run" "$rc" "$start" "$end" <<'PY' | tee -a "$OUT/second_start.txt"
import json, sys
path, run, rc, start, end = sys.argv[1:]
try:
    final = json.load(open(path))
except OSError:
    final = {}
label = {"1": "cold", "2": "second start", "3": "second start, cProfile"}[run]
print(f"run {run} ({label}): rc {rc}, process {float(end) - float(start):.1f} s, "
      f"seconds_to_fit {final.get('seconds_to_fit', float('nan')):.1f}, "
      f"seconds_to_first_step {final.get('seconds_to_first_step') or float('nan'):.1f} "
      f"(data ready {final.get('seconds_to_data', float('nan')):.1f}, model {final.get('seconds_to_model', float('nan')):.1f}, "
      f"validation examples {final.get('seconds_to_validation_examples', float('nan')):.1f}; "
      f"train step preloaded: {final.get('train_step_preloaded')})")
PY
done
rm -rf "$RUNS"
